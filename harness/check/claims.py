"""Cross-check what submission.json claims against the folder and its train logs.

Each check returns findings with a stable id and evidence (log file:line and the numbers compared):
logs.parse, claims.val_bpb, claims.val_loss, claims.bytes_code, claims.bytes_model, claims.bytes_total,
claims.size_cap, budget.train_time, budget.eval_time, claims.hardware, claims.provenance,
data.val_tokens, claims.seeds. Nothing here raises on odd input: a value that cannot be used is a
finding (fail, or skip with the reason), never a traceback.

The logs judged for budgets, hardware, provenance and dataset are the ones behind the claimed score
(`scores.score_submission`); other logs in the folder (ablations, reruns, summaries) are named in the
evidence but do not decide the outcome. When no claim matched, every log is judged.
"""

from __future__ import annotations

import difflib
import hashlib
import math
import re
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from harness import rules
from harness.errors import UserError
from harness.findings import FAIL, PASS, SKIP, WARN, Evidence, Finding, finding
from harness.submission.logs import EvalMetric, RunLog
from harness.submission.scores import (ClaimedValues, SubmissionScore, claim_tolerance, claimed_values, match_claim,
                            per_seed_matches, score_submission)
from harness.submission.folder import CODE, Submission

_SEED_IN_NAME = re.compile(r"seed[_-]?(\d+)", re.IGNORECASE)
_GPU_COUNT = re.compile(r"(\d+)\s*[x×]\s*(?:NVIDIA\s+)?([A-Za-z]+[\w ]*)", re.IGNORECASE)
_WINDOW_POWERS = range(10, 18)  # evaluation windows of 1,024 .. 131,072 tokens (trimmed split sizes)


@dataclass
class _Context:
    """What every check reads: the folder, its parsed logs, the claims and the score behind them."""

    submission: Submission
    logs: Mapping[str, RunLog]
    claims: ClaimedValues
    score: SubmissionScore

    @property
    def backing(self) -> dict[str, RunLog]:
        """The logs behind the claimed score; all logs when no claim matched."""
        if self.score.match is not None:
            return {name: self.logs[name] for name in self.score.logs()}
        return dict(self.logs)

    @property
    def others(self) -> list[str]:
        return sorted(set(self.logs) - set(self.backing))

    @property
    def record_track(self) -> bool:
        """The record track's rules apply unless the folder or submission.json says non-record."""
        track = self.submission.track() or self.submission.declared_track()
        return track != rules.NON_RECORD_TRACK

    def run_metric(self, name: str) -> EvalMetric | None:
        """A log's value in the submission's score mode, else the log's own score."""
        for run in self.score.runs:
            if run.log == name:
                return run.metric
        log = self.logs[name]
        return log.finals.get(self.score.mode) if self.score.mode in log.finals else log.score()


def check_claims(submission: Submission, run_logs: Mapping[str, RunLog]) -> list[Finding]:
    """Every claims/budget/data finding for one submission folder."""
    claims = claimed_values(submission.metadata)
    context = _Context(submission, run_logs, claims, score_submission(run_logs, claims))
    findings: list[Finding] = []
    for check in CHECKS:
        findings.extend(check(context))
    return findings


def claim_measurements(submission: Submission, run_logs: Mapping[str, RunLog]) -> dict[str, Any]:
    """The numbers behind the findings: per-log facts and the score (per seed, mean, spread)."""
    score = score_submission(run_logs, claimed_values(submission.metadata))
    per_log = {}
    for name, log in sorted(run_logs.items()):
        metric = log.finals.get(score.mode) if score.mode in log.finals else log.score()
        per_log[name] = {
            "format_family": log.format_family, "seed": log.seed, "world_size": log.world_size,
            "val_tokens": log.val_token_count, "dataset": log.dataset,
            "train_time_s": _seconds(log.train_time_ms), "last_step": log.last_step,
            "total_bytes": log.total_bytes, "model_bytes": log.model_bytes, "code_bytes": log.code_bytes,
            "score_mode": metric.mode if metric else None,
            "val_bpb": _finite(metric.val_bpb) if metric else None,
            "val_loss": _finite(metric.val_loss) if metric else None,
            "eval_time_s": _seconds(metric.eval_time_ms) if metric else None,
            "problems": list(log.problems),
        }
    return {
        "logs": per_log,
        "score": {
            "mode": score.mode, "rule": score.rule, "runs": len(score.runs),
            "per_run": [{"log": r.log, "seed": r.seed, "val_bpb": _finite(r.metric.val_bpb),
                         "val_loss": _finite(r.metric.val_loss)} for r in score.runs],
            "mean_val_bpb": score.mean("val_bpb"), "std_val_bpb": score.std("val_bpb"),
            "mean_val_loss": score.mean("val_loss"), "std_val_loss": score.std("val_loss"),
        },
    }


# -- logs ---------------------------------------------------------------------------------------------

def _check_logs_parse(c: _Context) -> list[Finding]:
    if not c.logs:
        return [finding("logs.parse", SKIP, "no train log to parse.")]
    findings = []
    clean = [name for name, log in c.logs.items() if not log.problems]
    for name, log in sorted(c.logs.items()):
        if log.problems:
            findings.append(finding("logs.parse", WARN, f"{name}: " + "; ".join(log.problems) + ".",
                                    file=name, format_family=log.format_family, lines=log.line_count))
    if clean:
        families = sorted({c.logs[name].format_family for name in clean})
        findings.append(finding("logs.parse", PASS, f"{len(clean)} log(s) parsed, each with a final metric "
                                f"(format: {', '.join(families)}).", logs=sorted(clean)))
    return findings


# -- the score -------------------------------------------------------------------------------------

def _check_score_claims(c: _Context) -> list[Finding]:
    findings = []
    for key in ("val_bpb", "val_loss"):
        check = f"claims.{key}"
        problems = [p for p in c.claims.problems if p.startswith(key + " ")]
        claimed = getattr(c.claims, key)
        if c.submission.metadata is None:
            reason = c.submission.metadata_error or "there is no submission.json"
            findings.append(finding(check, SKIP, f"no claims to check: {reason}."))
            continue
        if problems:
            findings.append(finding(check, FAIL, f"submission.json: {problems[0]}.", file=c.submission.metadata_file))
        elif claimed is not None:
            findings.append(_check_claimed_score(c, key, claimed))
        elif not any(key in values for values in c.claims.per_seed.values()):
            findings.append(finding(check, SKIP, f"submission.json claims no {key}.", file=c.submission.metadata_file))
        per_seed = per_seed_matches(c.logs, c.claims, key)
        if per_seed:
            findings.append(_check_per_seed(c, key, per_seed))
    return findings


def _check_claimed_score(c: _Context, key: str, claimed: float) -> Finding:
    check = f"claims.{key}"
    if not c.logs:
        return finding(check, SKIP, f"claimed {key} {claimed} cannot be checked: the folder holds no train log.")
    scored = {name: log for name, log in c.logs.items() if log.metrics}
    if not scored:
        return finding(check, FAIL, f"claimed {key} {claimed}, but no log states a final metric.",
                       logs=sorted(c.logs))
    match = c.score.match if c.score.match is not None and c.score.match.key == key else None
    if match is None:
        match = match_claim(c.logs, key, claimed, c.claims.seeds)
    if match is not None:
        return Finding(check, PASS, f"claimed {key} {claimed} matches {match.describe()} "
                       f"(tolerance {claim_tolerance(claimed):g}).", _run_evidence(match.runs, key))
    mean = c.score.mean(key)
    shown = f"{mean:.8g}" if mean is not None else "nothing"
    return Finding(check, FAIL, f"claimed {key} {claimed} matches no log: the logs give {shown} "
                   f"({c.score.rule}; tolerance {claim_tolerance(claimed):g}).", _run_evidence(c.score.runs, key))


def _check_per_seed(c: _Context, key: str, results) -> Finding:
    check = f"claims.{key}"
    evidence, mismatched, missing = [], [], []
    for seed, claimed, match, logs in results:
        if match is not None:
            run = match.runs[0]
            evidence.append(Evidence(file=run.log, line=run.metric.line,
                                     values={"seed": seed, "claimed": claimed, key: match.value, "mode": match.mode}))
        elif logs:
            mismatched.append(seed)
            shown = {name: _finite(getattr(c.run_metric(name), key, math.nan)) for name in logs}
            evidence.append(Evidence(file=logs[0], values={"seed": seed, "claimed": claimed, "logged": shown}))
        else:
            missing.append(seed)
            evidence.append(Evidence(values={"seed": seed, "claimed": claimed, "logged": None}))
    total = len(results)
    if mismatched:
        return Finding(check, FAIL, f"per-seed {key}: seed(s) {_list(mismatched)} differ from their logs "
                       f"({total - len(mismatched) - len(missing)} of {total} match).", evidence)
    if missing:
        return Finding(check, WARN, f"per-seed {key}: no log states seed(s) {_list(missing)} "
                       f"({total - len(missing)} of {total} match).", evidence)
    return Finding(check, PASS, f"per-seed {key}: all {total} claimed values match their seed's log.", evidence)


# -- bytes -----------------------------------------------------------------------------------------

def _check_bytes_code(c: _Context) -> list[Finding]:
    counted = c.submission.counted_code()
    logged = {name: log.code_bytes for name, log in c.backing.items() if log.code_bytes is not None}
    problems = [p for p in c.claims.problems if p.startswith("bytes_code ")]
    if problems:
        return [finding("claims.bytes_code", FAIL, f"submission.json: {problems[0]}.", file=c.submission.metadata_file)]
    if counted is None:
        return [finding("claims.bytes_code", SKIP, f"no readable {rules.COUNTED_CODE_FILE} to measure.")]
    evidence = [Evidence(file=counted.relpath, values={"bytes": counted.size})]
    evidence += [Evidence(file=name, line=c.logs[name].lines.get("code_bytes"), values={"code_bytes": value})
                 for name, value in sorted(logged.items())]
    if c.claims.bytes_code is not None:
        evidence.insert(0, Evidence(file=c.submission.metadata_file, values={"bytes_code": c.claims.bytes_code}))
        if c.claims.bytes_code != counted.size:
            return [Finding("claims.bytes_code", FAIL, f"claimed bytes_code {c.claims.bytes_code:,} but "
                            f"{counted.relpath} is {counted.size:,} bytes.", evidence)]
    if not logged and c.claims.bytes_code is None:
        return [Finding("claims.bytes_code", SKIP, f"neither submission.json nor the logs state code bytes "
                        f"({counted.relpath} is {counted.size:,} bytes).", evidence)]
    differing = sorted(name for name, value in logged.items() if value != counted.size)
    if differing:
        compressed = any(c.logs[n].code_bytes_uncompressed is not None for n in differing)
        why = ("the logs count the code compressed, while the folder holds it uncompressed" if compressed
               else "the script changed after the run, or the log counts other bytes")
        return [Finding("claims.bytes_code", WARN, f"{counted.relpath} is {counted.size:,} bytes but "
                        f"{_list(differing)} counted {_list(sorted({logged[n] for n in differing}), '{:,}')} "
                        f"code bytes ({why}).", evidence)]
    return [Finding("claims.bytes_code", PASS, f"{counted.relpath} is {counted.size:,} bytes, as "
                    f"{'claimed and ' if c.claims.bytes_code is not None else ''}logged.", evidence)]


def _check_bytes_model(c: _Context) -> list[Finding]:
    logged = {name: log.model_bytes for name, log in c.backing.items() if log.model_bytes is not None}
    if c.claims.bytes_model is None:
        return [finding("claims.bytes_model", SKIP, "submission.json states no compressed model bytes.",
                        logged=logged or None)]
    key, claimed = c.claims.bytes_model
    evidence = [Evidence(file=c.submission.metadata_file, values={key: claimed})]
    evidence += [Evidence(file=n, line=c.logs[n].lines.get("model_bytes"), values={"model_bytes": v})
                 for n, v in sorted(logged.items())]
    if not logged:
        return [Finding("claims.bytes_model", SKIP, f"claimed {key} {claimed:,}, but no log states the "
                        "compressed model size.", evidence)]
    matching = sorted(name for name, value in logged.items() if value == claimed)
    if matching:
        return [Finding("claims.bytes_model", PASS, f"claimed {key} {claimed:,} is logged by {_list(matching)}.",
                        evidence)]
    return [Finding("claims.bytes_model", FAIL, f"claimed {key} {claimed:,} is logged by no log "
                    f"(logs: {_list(sorted(set(logged.values())), '{:,}')}).", evidence)]


def _check_bytes_total(c: _Context) -> list[Finding]:
    findings = []
    problems = [p for p in c.claims.problems if p.startswith(("bytes_total ", "artifact_bytes "))]
    for problem in problems:
        findings.append(finding("claims.bytes_total", FAIL, f"submission.json: {problem}.",
                                file=c.submission.metadata_file))
    counted = c.submission.counted_code()
    # a claimed total may come from any run in the folder, not only those behind the claimed score
    logged = {name: log.total_bytes for name, log in c.logs.items() if log.total_bytes is not None}
    recomputed = ({name: counted.size + log.model_bytes for name, log in c.logs.items()
                   if log.model_bytes is not None} if counted else {})
    for name, log in sorted(c.backing.items()):
        if None not in (log.total_bytes, log.code_bytes, log.model_bytes) and \
                log.total_bytes != log.code_bytes + log.model_bytes:
            findings.append(finding("claims.bytes_total", WARN, f"{name}: total {log.total_bytes:,} is not code "
                                    f"{log.code_bytes:,} + model {log.model_bytes:,}.", file=name,
                                    line=log.lines.get("total_bytes")))
    claimed = c.claims.bytes_total
    if claimed is not None:
        findings.append(_check_claimed_total(c, claimed, logged, recomputed))
    if c.claims.bytes_code is not None and c.claims.bytes_model is not None and claimed is not None and \
            claimed != c.claims.bytes_code + c.claims.bytes_model[1]:
        findings.append(finding("claims.bytes_total", FAIL, f"claimed bytes_total {claimed:,} is not the claimed "
                                f"bytes_code {c.claims.bytes_code:,} + {c.claims.bytes_model[0]} "
                                f"{c.claims.bytes_model[1]:,}.", file=c.submission.metadata_file))
    findings.extend(_check_seed_artifacts(c))
    if not findings:
        findings.append(finding("claims.bytes_total", SKIP, "submission.json states no total bytes.",
                                logged=logged or None))
    return findings


def _check_claimed_total(c: _Context, claimed: int, logged: dict[str, int], recomputed: dict[str, int]) -> Finding:
    evidence = [Evidence(file=c.submission.metadata_file, values={"bytes_total": claimed})]
    evidence += [Evidence(file=n, line=c.logs[n].lines.get("total_bytes"), values={"total_bytes": v})
                 for n, v in sorted(logged.items())]
    if not logged and not recomputed:
        return Finding("claims.bytes_total", SKIP, f"claimed bytes_total {claimed:,}, but no log states sizes.",
                       evidence)
    if any(v == claimed for v in logged.values()):
        return Finding("claims.bytes_total", PASS, f"claimed bytes_total {claimed:,} is logged by "
                       f"{_list(sorted(n for n, v in logged.items() if v == claimed))}.", evidence)
    if any(v == claimed for v in recomputed.values()):
        return Finding("claims.bytes_total", PASS, f"claimed bytes_total {claimed:,} = {rules.COUNTED_CODE_FILE} "
                       "+ a logged compressed model.", evidence)
    values = list(logged.values()) or list(recomputed.values())
    if claimed in (max(values), round(sum(values) / len(values))):
        how = "largest" if claimed == max(values) else "mean"
        return Finding("claims.bytes_total", PASS, f"claimed bytes_total {claimed:,} is the {how} total of "
                       f"{len(values)} runs.", evidence)
    return Finding("claims.bytes_total", FAIL, f"claimed bytes_total {claimed:,} matches no log "
                   f"(logged totals {_list(sorted(set(values)), '{:,}')}).", evidence)


def _check_seed_artifacts(c: _Context) -> list[Finding]:
    findings = []
    for seed, values in sorted(c.claims.per_seed.items()):
        if "artifact_bytes" not in values:
            continue
        claimed = int(values["artifact_bytes"])
        logs = {name: log.total_bytes for name, log in c.logs.items() if log.seed == seed and log.total_bytes}
        if logs and claimed not in logs.values():
            findings.append(finding("claims.bytes_total", FAIL, f"seed {seed}: claimed artifact_bytes {claimed:,} "
                                    f"but its log(s) state {_list(sorted(set(logs.values())), '{:,}')}.",
                                    file=min(logs), seed=seed, claimed=claimed, logged=logs))
    return findings


def _check_size_cap(c: _Context) -> list[Finding]:
    """Judged on what is claimed and logged; the folder's train_gpt.py + each logged model is a second
    opinion (a warning when only it is over: the logs counted other code bytes, e.g. compressed)."""
    stated: list[tuple[int, str, str | None]] = []  # (bytes, where it comes from, file)
    if c.claims.bytes_total is not None:
        stated.append((c.claims.bytes_total, "claimed bytes_total", c.submission.metadata_file))
    for seed, values in c.claims.per_seed.items():
        if "artifact_bytes" in values:
            stated.append((int(values["artifact_bytes"]), f"claimed artifact_bytes of seed {seed}",
                           c.submission.metadata_file))
    stated += [(log.total_bytes, f"total logged by {name}", name)
               for name, log in sorted(c.backing.items()) if log.total_bytes is not None]
    counted = c.submission.counted_code()
    recomputed = [(counted.size + log.model_bytes, f"{counted.relpath} ({counted.size:,} bytes) + model of {name}", name)
                  for name, log in sorted(c.backing.items()) if counted is not None and log.model_bytes is not None]
    judged = stated or recomputed
    if not judged:
        return [finding("claims.size_cap", SKIP, "no artifact size is claimed or logged.")]
    evidence = [Evidence(file=f, line=c.logs[f].lines.get("total_bytes") if f in c.logs else None,
                         values={"bytes": b, "source": s}) for b, s, f in sorted(set(stated + recomputed))]
    cap = rules.ARTIFACT_CAP_BYTES
    largest = max(judged)
    if largest[0] > cap:
        return [Finding("claims.size_cap", FAIL, f"{largest[1]} is {largest[0]:,} bytes, over the {cap:,}-byte "
                        "cap (R1.1, decimal).", evidence)]
    if largest[0] == cap:
        return [Finding("claims.size_cap", WARN, f"{largest[1]} is exactly {cap:,} bytes; the README's "
                        "\"<16MB\" read strictly puts it over (R1.1).", evidence)]
    second = max(recomputed) if recomputed else None
    if second is not None and second[0] >= cap:
        return [Finding("claims.size_cap", WARN, f"claimed and logged sizes are under the cap (largest "
                        f"{largest[0]:,}), but {second[1]} is {second[0]:,} bytes: the logs count fewer code "
                        f"bytes than the submitted {counted.relpath} (R1.1, R1.2).", evidence)]
    return [Finding("claims.size_cap", PASS, f"largest artifact {largest[0]:,} bytes ({largest[1]}), "
                    f"{cap - largest[0]:,} under the {cap:,}-byte cap.", evidence)]


# -- budgets and hardware -------------------------------------------------------------------------

def _check_train_time(c: _Context) -> list[Finding]:
    times = {name: log.train_time_ms for name, log in c.backing.items() if log.train_time_ms is not None}
    if not times:
        return [finding("budget.train_time", SKIP, "no log states the training time.")]
    evidence = [Evidence(file=n, line=c.logs[n].lines.get("stop"),
                         values={"train_time_s": _seconds(t), "step_s": _seconds(_step_ms(c.logs[n]))})
                for n, t in sorted(times.items())]
    name = max(times, key=times.get)
    longest, limit_ms = times[name], rules.TRAIN_TIME_LIMIT_S * 1000.0
    if not c.record_track:
        return [Finding("budget.train_time", SKIP, f"non-record track: the {rules.TRAIN_TIME_LIMIT_S:g} s limit "
                        f"does not apply (longest training {longest / 1000:.1f} s, {name}).", evidence)]
    if longest <= limit_ms:
        return [Finding("budget.train_time", PASS, f"longest training {longest / 1000:.3f} s ({name}), within "
                        f"{rules.TRAIN_TIME_LIMIT_S:g} s.", evidence)]
    over, step = longest - limit_ms, _step_ms(c.logs[name])
    if c.logs[name].stop_reason == "wallclock_cap" and step is not None and \
            over <= rules.TRAIN_OVERSHOOT_STEPS * step:
        return [Finding("budget.train_time", PASS, f"longest training {longest / 1000:.3f} s ({name}): "
                        f"{over:.0f} ms past {rules.TRAIN_TIME_LIMIT_S:g} s, {over / step:.2f} steps of "
                        f"{step:.1f} ms; the challenge's baseline checks the wall-clock cap after each step and "
                        "stops after the step that crosses it (allowed: "
                        f"{rules.TRAIN_OVERSHOOT_STEPS} steps).", evidence)]
    return [Finding("budget.train_time", FAIL, f"{name} trained {longest / 1000:.1f} s, over the "
                    f"{rules.TRAIN_TIME_LIMIT_S:g} s limit (R2.1).", evidence)]


def _check_eval_time(c: _Context) -> list[Finding]:
    scored, totals, evidence = {}, {}, []
    for name, log in sorted(c.backing.items()):
        metric = c.run_metric(name)
        if metric is None or metric.eval_time_ms is None:
            continue
        scored[name] = metric.eval_time_ms
        totals[name] = _evaluation_time_ms(log)
        evidence.append(Evidence(file=name, line=metric.line, values={
            "mode": metric.mode, "eval_time_s": _seconds(metric.eval_time_ms),
            "all_final_evals_s": _seconds(totals[name])}))
    if not scored:
        return [finding("budget.eval_time", SKIP, "no log states the scored evaluation's time.")]
    name = max(scored, key=scored.get)
    limit_ms = rules.EVAL_TIME_LIMIT_S * 1000.0
    if not c.record_track:
        return [Finding("budget.eval_time", SKIP, f"non-record track: the {rules.EVAL_TIME_LIMIT_S:g} s limit "
                        f"does not apply (longest scored evaluation {scored[name] / 1000:.1f} s).", evidence)]
    if scored[name] > limit_ms:
        return [Finding("budget.eval_time", FAIL, f"{name}: the scored evaluation took {scored[name] / 1000:.1f} s, "
                        f"over the {rules.EVAL_TIME_LIMIT_S:g} s limit (R2.2).", evidence)]
    heaviest = max(totals, key=totals.get)
    if totals[heaviest] > limit_ms:
        return [Finding("budget.eval_time", WARN, f"{heaviest}: its final evaluations together take "
                        f"{totals[heaviest] / 1000:.1f} s, over {rules.EVAL_TIME_LIMIT_S:g} s, though the scored "
                        f"one alone is within (R2.2).", evidence)]
    return [Finding("budget.eval_time", PASS, f"longest scored evaluation {scored[name] / 1000:.1f} s ({name}), "
                    f"within {rules.EVAL_TIME_LIMIT_S:g} s.", evidence)]


def _check_hardware(c: _Context) -> list[Finding]:
    evidence = [Evidence(file=n, line=log.lines.get("world_size"),
                         values={"world_size": log.world_size, "gpus": _gpu_summary(log)})
                for n, log in sorted(c.backing.items()) if log.world_size is not None or log.gpu_names]
    if c.claims.hardware:
        evidence.insert(0, Evidence(file=c.submission.metadata_file, values={"hardware": c.claims.hardware}))
    if not evidence:
        return [finding("claims.hardware", SKIP, "neither the logs nor submission.json state the hardware.")]
    problems = []
    for name, log in sorted(c.backing.items()):
        if log.world_size is not None and log.world_size != rules.REFERENCE_WORLD_SIZE:
            problems.append(f"{name} ran with world_size {log.world_size}")
        other = sorted({g for g in log.gpu_names if "H100" not in g})
        if other:
            problems.append(f"{name} ran on {', '.join(other)}")
    claimed = c.claims.hardware or ""
    count = _GPU_COUNT.search(claimed)
    if claimed and ("H100" not in claimed.upper() or (count and int(count[1]) != rules.REFERENCE_WORLD_SIZE)):
        problems.append(f"submission.json says {claimed!r}")
    reference = f"{rules.REFERENCE_HARDWARE} (world_size {rules.REFERENCE_WORLD_SIZE})"
    if not c.record_track:
        shown = "; ".join(problems) if problems else "the reference hardware"
        return [Finding("claims.hardware", SKIP, f"non-record track: {reference} is not required ({shown}).",
                        evidence)]
    if problems:
        return [Finding("claims.hardware", FAIL, "; ".join(problems) + f", not {reference} (R2.1).", evidence)]
    return [Finding("claims.hardware", PASS, f"the runs state {reference}.", evidence)]


# -- provenance ------------------------------------------------------------------------------------

def _check_provenance(c: _Context) -> list[Finding]:
    embedded = {name: log for name, log in c.backing.items() if log.script}
    if not embedded:
        return [finding("claims.provenance", SKIP, "no log behind the claim embeds its training script.")]
    code = _code_texts(c.submission)
    findings, exact = [], []
    counted = rules.COUNTED_CODE_FILE
    for name, log in sorted(embedded.items()):
        start = log.script_lines[0] if log.script_lines else 1
        same = [path for path, text in code.items() if _same_source(text, log.script)]
        digest = hashlib.sha256(log.script.encode("utf-8", "surrogatepass")).hexdigest()
        if counted in same:
            exact.append(name)
        elif same:
            findings.append(finding("claims.provenance", WARN, f"{name} embeds {same[0]}, not {counted}: the "
                                    f"counted code (R1.2) is not the script that produced this log.",
                                    file=name, line=start, sha256=digest, matches=same))
        else:
            target = counted if counted in code else _closest(code, log.script)
            if target is None:  # files.required reports the missing train_gpt.py
                findings.append(finding("claims.provenance", SKIP, f"{name} embeds a script, but the folder holds "
                                        "no Python code to compare it with.", file=name, line=start, sha256=digest))
                continue
            summary = _diff_summary(code[target], log.script)
            findings.append(finding("claims.provenance", FAIL, f"{name} embeds a script that differs from {target}: "
                                    f"{summary['text']}.", file=name,
                                    line=start + summary["log_line"] - 1 if summary["log_line"] else start,
                                    excerpt=summary["excerpt"], sha256=digest,
                                    file_sha256=hashlib.sha256(code[target].encode("utf-8", "surrogatepass")).hexdigest(),
                                    compared_with=target, lines_added=summary["added"],
                                    lines_removed=summary["removed"], first_differing_line=summary["file_line"]))
    if exact:
        findings.insert(0, finding("claims.provenance", PASS, f"{_list(exact)} embed(s) exactly {counted} "
                                   "(sha256 equal up to line endings).", logs=exact,
                                   sha256=hashlib.sha256(code[counted].encode("utf-8", "surrogatepass")).hexdigest()))
    return findings


def _code_texts(submission: Submission) -> dict[str, str]:
    texts = {}
    for entry in submission.files_of(CODE):
        if entry.relpath.endswith(".py"):
            try:
                texts[entry.relpath] = submission.read_text(entry.relpath)
            except UserError:
                continue
    return texts


def _same_source(text: str, script: str) -> bool:
    """Equal, or equal once line endings and trailing blank lines are normalised (loggers add a
    newline after the source; Windows checkouts write CRLF)."""
    if text == script:
        return True
    return text.replace("\r\n", "\n").rstrip() == script.replace("\r\n", "\n").rstrip()


def _closest(code: dict[str, str], script: str) -> str | None:
    if not code:
        return None
    lines = set(script.splitlines())
    return max(code, key=lambda path: len(lines & set(code[path].splitlines())))


def _diff_summary(text: str, script: str) -> dict[str, Any]:
    """Lines added and removed (from the file to the log's copy) and where they first differ."""
    file_lines = text.replace("\r\n", "\n").splitlines()
    log_lines = script.replace("\r\n", "\n").splitlines()
    opcodes = difflib.SequenceMatcher(None, file_lines, log_lines).get_opcodes()
    added = sum(j2 - j1 for tag, _, _, j1, j2 in opcodes if tag in ("insert", "replace"))
    removed = sum(i2 - i1 for tag, i1, i2, _, _ in opcodes if tag in ("delete", "replace"))
    first = next((op for op in opcodes if op[0] != "equal"), None)
    if first is None:
        return {"text": "only whitespace differs", "added": 0, "removed": 0, "file_line": None, "log_line": None,
                "excerpt": None}
    tag, i1, i2, j1, j2 = first
    if len(opcodes) == 2 and tag == "delete" and i1 == 0 and opcodes[1][0] == "equal":
        text_ = f"the log's copy lacks the first {i2} lines of the file (its head was overwritten)"
    else:
        text_ = f"{added} line(s) added, {removed} removed; first difference at line {i1 + 1} of the file"
    excerpt = log_lines[j1] if j1 < len(log_lines) else (file_lines[i1] if i1 < len(file_lines) else "")
    return {"text": text_, "added": added, "removed": removed, "file_line": i1 + 1, "log_line": j1 + 1,
            "excerpt": excerpt[:200]}


# -- dataset ---------------------------------------------------------------------------------------

def _check_val_tokens(c: _Context) -> list[Finding]:
    counts = {name: log.val_token_count for name, log in c.backing.items() if log.val_token_count is not None}
    if not counts:
        return [finding("data.val_tokens", SKIP, "no log states the validation token count.")]
    evidence = [Evidence(file=n, line=c.logs[n].lines.get("val_token_count"),
                         values={"val_tokens": v, "dataset": c.logs[n].dataset}) for n, v in sorted(counts.items())]
    findings = []
    distinct = sorted(set(counts.values()))
    if len(distinct) > 1:
        findings.append(Finding("data.val_tokens", WARN, f"the logs evaluate on different validation token counts "
                                f"({_list(distinct, '{:,}')}).", evidence))
    unknown = []
    for count in distinct:
        names = sorted(n for n, v in counts.items() if v == count)
        known = _known_split(count, c.logs[names[0]].dataset)
        if known is None:
            unknown.append(count)
        else:
            evidence.append(Evidence(values={"val_tokens": count, "known_as": known}))
    if unknown:
        findings.append(Finding("data.val_tokens", WARN, f"validation token count {_list(unknown, '{:,}')} is not "
                                "a split size seen in accepted records (rules.VAL_TOKEN_COUNTS_BY_DATASET): a "
                                "different split or tokenizer must be justified (R3.4, R3.5).", evidence))
    if not findings:
        findings.append(Finding("data.val_tokens", PASS, f"validation token count {_list(distinct, '{:,}')}, "
                                "a split size seen in accepted records.", evidence))
    return findings


def _known_split(count: int, dataset: str | None) -> str | None:
    """Where a count is known from: its dataset's table first, then any table (the directory may have
    been renamed); a known count trimmed to whole windows of a longer evaluation length counts too."""
    tables = rules.VAL_TOKEN_COUNTS_BY_DATASET
    ordered = ([(dataset, tables[dataset])] if dataset in tables else []) + list(tables.items())
    for name, table in ordered:
        if count in table:
            return f"{name}: {table[count]}"
        for known in table:
            for power in _WINDOW_POWERS:
                window = 2 ** power
                if count == known // window * window and count != known:
                    return f"{name}: {known:,} trimmed to whole windows of {window:,} tokens"
    return None


# -- seeds -----------------------------------------------------------------------------------------

def _check_seeds(c: _Context) -> list[Finding]:
    seeds = {name: log.seed for name, log in c.logs.items() if log.seed is not None}
    claimed = c.claims.seeds
    if not seeds and not claimed:
        return [finding("claims.seeds", SKIP, "neither the logs nor submission.json state seeds.")]
    warnings = []
    for name, seed in sorted(seeds.items()):
        named = _SEED_IN_NAME.search(name.rsplit("/", 1)[-1])
        if named and int(named[1]) != seed:
            warnings.append(f"{name} is named for seed {named[1]} but logs seed {seed}")
    missing = [s for s in claimed if s not in seeds.values()]
    if missing:
        warnings.append(f"claimed seed(s) {_list(missing)} have no log")
    behind = [run.seed for run in c.score.runs]
    distinct_behind = sorted({s for s in behind if s is not None})
    if len(behind) != len(set(behind)) and None not in behind:
        warnings.append(f"the score averages runs that share a seed ({_list(behind)})")
    if c.record_track and c.score.runs and len(distinct_behind) < rules.USUAL_SEED_COUNT:
        warnings.append(f"the score rests on {len(distinct_behind)} distinct seed(s); records usually show "
                        f"{rules.USUAL_SEED_COUNT} (R5.1)")
    evidence = [Evidence(file=n, line=c.logs[n].lines.get("seed"), values={"seed": s}) for n, s in sorted(seeds.items())]
    if claimed:
        evidence.insert(0, Evidence(file=c.submission.metadata_file, values={"seeds": claimed}))
    if warnings:
        return [Finding("claims.seeds", WARN, "; ".join(warnings) + ".", evidence)]
    shown = distinct_behind or sorted(set(seeds.values()))
    return [Finding("claims.seeds", PASS, f"{len(shown)} distinct seed(s) ({_list(shown)}), each with a log.",
                    evidence)]


CHECKS: tuple[Callable[[_Context], list[Finding]], ...] = (
    _check_logs_parse, _check_score_claims, _check_bytes_code, _check_bytes_model, _check_bytes_total,
    _check_size_cap, _check_train_time, _check_eval_time, _check_hardware, _check_provenance,
    _check_val_tokens, _check_seeds,
)


# -- helpers ---------------------------------------------------------------------------------------

def _run_evidence(runs, key: str) -> list[Evidence]:
    return [Evidence(file=r.log, line=r.metric.line, values={"seed": r.seed, "mode": r.metric.mode,
                                                              key: _finite(getattr(r.metric, key))}) for r in runs]


def _evaluation_time_ms(log: RunLog) -> float:
    """The time of all non-diagnostic final evaluations; one evaluation reported on two lines (e.g.
    `ttt_sliding:done` and `legal_ttt` with the same values) counts once."""
    total, seen = 0.0, []
    for metric in log.metrics:
        if metric.diagnostic or metric.eval_time_ms is None:
            continue
        if any(abs(metric.val_bpb - b) <= 2 * max(r, metric.rounding) and
               abs(metric.val_loss - l) <= 2 * max(r, metric.rounding) for b, l, r in seen):
            continue
        seen.append((metric.val_bpb, metric.val_loss, metric.rounding))
        total += metric.eval_time_ms
    return total


def _step_ms(log: RunLog) -> float | None:
    """One training step's duration near the stop: the last step_avg, else train time / steps."""
    averaged = [p for p in log.steps if p.step_avg_ms]
    if averaged:
        return max(averaged, key=lambda p: p.line).step_avg_ms
    if log.train_time_ms and log.last_step:
        return log.train_time_ms / log.last_step
    return None


def _gpu_summary(log: RunLog) -> str | None:
    if not log.gpu_names:
        return None
    names = sorted(set(log.gpu_names))
    return f"{len(log.gpu_names)}x " + " / ".join(names)


def _seconds(ms: float | None) -> float | None:
    return round(ms / 1000.0, 3) if ms is not None and math.isfinite(ms) else None


def _finite(value: float) -> float | None:
    return value if isinstance(value, (int, float)) and math.isfinite(value) else None


def _list(items, fmt: str = "{}") -> str:
    return ", ".join(fmt.format(item) for item in items)
