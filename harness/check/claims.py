"""Cross-check what submission.json claims against the folder and its train logs.

Each check returns findings with a stable id and evidence (log file:line and the numbers compared):
logs.parse, claims.val_bpb, claims.val_loss, claims.bytes_code, claims.bytes_model, claims.bytes_total,
claims.size_cap, budget.train_time, budget.eval_time, claims.hardware, claims.provenance,
data.val_tokens, claims.seeds. Nothing here raises on odd input: a value that cannot be used is a
finding (fail, or skip with the reason), never a traceback.

The logs judged for budgets, hardware, provenance and dataset are the ones behind the claimed score
(`scores.score_submission`); other logs in the folder (ablations, reruns, summaries) are named in the
evidence but do not decide the outcome. When no claim matched, every log is judged. The code measured
is the submission's script (`script.counted_script`) with the files it runs. The score claims live in
score_claims.py, provenance in provenance.py, what they share in context.py.
"""

from __future__ import annotations

import re
from typing import Any, Callable, Mapping

from harness import rules
from harness.check.context import Context, finite, listed, rounded_from, seconds
from harness.check.provenance import check_provenance
from harness.check.score_claims import check_score_claims
from harness.findings import FAIL, PASS, SKIP, WARN, Evidence, Finding, finding
from harness.submission.logs import RunLog
from harness.submission.scores import TOTAL_ALIASES, claimed_values, score_submission
from harness.submission.folder import Submission
from harness.submission.script import counted_script

_SEED_IN_NAME = re.compile(r"seed[_-]?(\d+)", re.IGNORECASE)
_GPU_COUNT = re.compile(r"(\d+)\s*[x×]\s*(?:NVIDIA\s+)?([A-Za-z]+[\w ]*)", re.IGNORECASE)
_WINDOW_POWERS = range(10, 18)  # evaluation windows of 1,024 .. 131,072 tokens (trimmed split sizes)


def check_claims(submission: Submission, run_logs: Mapping[str, RunLog]) -> list[Finding]:
    """Every claims/budget/data finding for one submission folder."""
    claims = claimed_values(submission.metadata)
    context = Context(submission, run_logs, claims, score_submission(run_logs, claims))
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
            "train_time_s": seconds(log.train_time_ms), "last_step": log.last_step,
            "total_bytes": log.total_bytes, "model_bytes": log.model_bytes, "code_bytes": log.code_bytes,
            "score_mode": metric.mode if metric else None,
            "val_bpb": finite(metric.val_bpb) if metric else None,
            "val_loss": finite(metric.val_loss) if metric else None,
            "eval_time_s": seconds(metric.eval_time_ms) if metric else None,
            "problems": list(log.problems),
        }
    script = counted_script(submission, run_logs)
    return {
        "logs": per_log,
        "counted_code": {"file": script.relpath, "how": script.how, "bytes": script.total_bytes,
                         "runs": [{"file": r.relpath, "bytes": r.bytes, "how": r.how, "by": r.by} for r in script.runs]},
        "score": {
            "mode": score.mode, "rule": score.rule, "runs": len(score.runs),
            "per_run": [{"log": r.log, "seed": r.seed, "val_bpb": finite(r.metric.val_bpb),
                         "val_loss": finite(r.metric.val_loss)} for r in score.runs],
            "mean_val_bpb": score.mean("val_bpb"), "std_val_bpb": score.std("val_bpb"),
            "mean_val_loss": score.mean("val_loss"), "std_val_loss": score.std("val_loss"),
        },
    }


# -- logs ---------------------------------------------------------------------------------------------

def _check_logs_parse(c: Context) -> list[Finding]:
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


# -- bytes -----------------------------------------------------------------------------------------

def _check_bytes_code(c: Context) -> list[Finding]:
    """The counted code (the submission's script and the files it runs, `script.counted_script`) against
    the claim and the logs. A claim that differs from the file but equals what a log behind the claim
    states (its code-size line, or the size of its embedded copy) was true of the script that ran: the
    file was edited after the run (claims.provenance judges the edit), a warning; so is a round figure."""
    script = c.script
    logged = {name: log.code_bytes for name, log in c.backing.items() if log.code_bytes is not None}
    problems = [p for p in c.claims.problems if p.startswith(("bytes_code ", "code_bytes "))]
    if problems:
        return [finding("claims.bytes_code", FAIL, f"submission.json: {problems[0]}.", file=c.submission.metadata_file)]
    if script.relpath is None:
        return [finding("claims.bytes_code", SKIP, f"no readable script to measure ({script.reason}).")]
    measured, name = script.total_bytes, _counted_name(script)
    evidence = [Evidence(file=script.relpath, values={"bytes": script.bytes, "counted_bytes": measured})]
    evidence += [Evidence(file=name_, line=c.logs[name_].lines.get("code_bytes"), values={"code_bytes": value})
                 for name_, value in sorted(logged.items())]
    claimed, key = c.claims.bytes_code, c.claims.key("bytes_code")
    if claimed is not None:
        evidence.insert(0, Evidence(file=c.submission.metadata_file, values={key: claimed}))
        if claimed != measured:
            return [_claimed_code_differs(c, claimed, key, measured, name, evidence)]
    if not logged and claimed is None:
        return [Finding("claims.bytes_code", SKIP, f"neither submission.json nor the logs state code bytes "
                        f"({name} is {measured:,} bytes).", evidence)]
    differing = sorted(log for log, value in logged.items() if value != measured)
    if differing:
        compressed = any(c.logs[n].code_bytes_uncompressed is not None for n in differing)
        why = ("the logs count the code compressed, while the folder holds it uncompressed" if compressed
               else "the script changed after the run, or the log counts other bytes")
        return [Finding("claims.bytes_code", WARN, f"{name} is {measured:,} bytes but "
                        f"{listed(differing)} counted {listed(sorted({logged[n] for n in differing}), '{:,}')} "
                        f"code bytes ({why}).", evidence)]
    return [Finding("claims.bytes_code", PASS, f"{name} is {measured:,} bytes, as "
                    f"{'claimed and ' if claimed is not None else ''}logged.", evidence)]


def _claimed_code_differs(c: Context, claimed: int, key: str, measured: int, name: str,
                          evidence: list[Evidence]) -> Finding:
    stated = {log_name: log.code_bytes for log_name, log in c.backing.items() if log.code_bytes == claimed}
    stated.update({log_name: claimed for log_name, log in c.backing.items()
                   if log.script and abs(len(log.script.encode("utf-8", "surrogatepass")) - claimed) <= 1})
    if stated:
        return Finding("claims.bytes_code", WARN, f"claimed {key} {claimed:,} is what {listed(sorted(stated))} "
                       f"state(s) for the script that ran, but {name} is {measured:,} bytes now: the file was edited "
                       "after the run (see claims.provenance).", evidence)
    if rounded_from(claimed, measured):
        return Finding("claims.bytes_code", WARN, f"claimed {key} {claimed:,} is {name}'s {measured:,} bytes "
                       "written as a round figure.", evidence)
    return Finding("claims.bytes_code", FAIL, f"claimed {key} {claimed:,} but {name} is {measured:,} bytes.",
                   evidence)


def _counted_name(script) -> str:
    if not script.runs:
        return script.relpath
    return f"{script.relpath} with the {len(script.runs)} file(s) it runs"


def _check_bytes_model(c: Context) -> list[Finding]:
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
        return [Finding("claims.bytes_model", PASS, f"claimed {key} {claimed:,} is logged by {listed(matching)}.",
                        evidence)]
    return [Finding("claims.bytes_model", FAIL, f"claimed {key} {claimed:,} is logged by no log "
                    f"(logs: {listed(sorted(set(logged.values())), '{:,}')}).", evidence)]


def _check_bytes_total(c: Context) -> list[Finding]:
    findings = []
    problems = [p for p in c.claims.problems if p.startswith(tuple(f"{k} " for k in (*TOTAL_ALIASES, "artifact_bytes")))]
    for problem in problems:
        findings.append(finding("claims.bytes_total", FAIL, f"submission.json: {problem}.",
                                file=c.submission.metadata_file))
    counted = c.script.total_bytes if c.script.relpath else None
    # a claimed total may come from any run in the folder, not only those behind the claimed score
    logged = {name: log.total_bytes for name, log in c.logs.items() if log.total_bytes is not None}
    recomputed = ({name: counted + log.model_bytes for name, log in c.logs.items()
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
    stated = [claim for claim in c.claims.secondary if claim.metric == "bytes_total"]
    if stated and logged:
        findings.append(_check_stated_totals(c, stated, logged))
    if not findings:
        findings.append(finding("claims.bytes_total", SKIP, "submission.json states no total bytes.",
                                logged=logged or None))
    return findings


def _check_claimed_total(c: Context, claimed: int, logged: dict[str, int], recomputed: dict[str, int]) -> Finding:
    key = c.claims.key("bytes_total")
    evidence = [Evidence(file=c.submission.metadata_file, values={key: claimed})]
    evidence += [Evidence(file=n, line=c.logs[n].lines.get("total_bytes"), values={"total_bytes": v})
                 for n, v in sorted(logged.items())]
    if not logged and not recomputed:
        return Finding("claims.bytes_total", SKIP, f"claimed {key} {claimed:,}, but no log states sizes.",
                       evidence)
    if any(v == claimed for v in logged.values()):
        return Finding("claims.bytes_total", PASS, f"claimed {key} {claimed:,} is logged by "
                       f"{listed(sorted(n for n, v in logged.items() if v == claimed))}.", evidence)
    if any(v == claimed for v in recomputed.values()):
        return Finding("claims.bytes_total", PASS, f"claimed {key} {claimed:,} = {c.script.relpath} "
                       "+ a logged compressed model.", evidence)
    values = list(logged.values()) or list(recomputed.values())
    if claimed in (max(values), round(sum(values) / len(values))):
        how = "largest" if claimed == max(values) else "mean"
        return Finding("claims.bytes_total", PASS, f"claimed {key} {claimed:,} is the {how} total of "
                       f"{len(values)} runs.", evidence)
    rounded = sorted(v for v in {*values, max(values), round(sum(values) / len(values))} if rounded_from(claimed, v))
    if rounded:
        return Finding("claims.bytes_total", WARN, f"claimed {key} {claimed:,} is a round figure for the logged "
                       f"total(s) {listed(rounded, '{:,}')}, not an exact size.", evidence)
    return Finding("claims.bytes_total", FAIL, f"claimed {key} {claimed:,} matches no log "
                   f"(logged totals {listed(sorted(set(values)), '{:,}')}).", evidence)


def _check_stated_totals(c: Context, stated, logged: dict[str, int]) -> Finding:
    """Sizes submission.json states beside the total (a mean of the runs, one run's total)."""
    mean = round(sum(logged.values()) / len(logged))
    matched, unmatched = [], []
    for claim in stated:
        value = int(claim.value)
        if (claim.kind == "mean" and abs(value - mean) <= 1) or (claim.kind == "single" and value in logged.values()):
            matched.append(f"{claim.key} {value:,}")
        else:
            unmatched.append(f"{claim.key} {value:,}")
    evidence = [Evidence(file=c.submission.metadata_file, values={claim.key: int(claim.value) for claim in stated}),
                Evidence(values={"logged_totals": dict(sorted(logged.items())), "mean": mean})]
    if unmatched:
        return Finding("claims.bytes_total", WARN, f"submission.json also states {listed(unmatched)}, which the logs' "
                       f"totals do not give (their mean is {mean:,}).", evidence)
    return Finding("claims.bytes_total", PASS, f"the other sizes submission.json states match the logs: "
                   f"{listed(matched)}.", evidence)


def _check_seed_artifacts(c: Context) -> list[Finding]:
    findings = []
    for seed, values in sorted(c.claims.per_seed.items()):
        if "artifact_bytes" not in values:
            continue
        claimed = int(values["artifact_bytes"])
        logs = {name: log.total_bytes for name, log in c.logs.items() if log.seed == seed and log.total_bytes}
        if logs and claimed not in logs.values():
            findings.append(finding("claims.bytes_total", FAIL, f"seed {seed}: claimed artifact_bytes {claimed:,} "
                                    f"but its log(s) state {listed(sorted(set(logs.values())), '{:,}')}.",
                                    file=min(logs), seed=seed, claimed=claimed, logged=logs))
    return findings


def _check_size_cap(c: Context) -> list[Finding]:
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
    script = c.script
    counted = script.total_bytes if script.relpath else None
    recomputed = [(counted + log.model_bytes, f"{_counted_name(script)} ({counted:,} bytes) + model of {name}", name)
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
                        f"bytes than the submitted {_counted_name(script)} (R1.1, R1.2).", evidence)]
    return [Finding("claims.size_cap", PASS, f"largest artifact {largest[0]:,} bytes ({largest[1]}), "
                    f"{cap - largest[0]:,} under the {cap:,}-byte cap.", evidence)]


# -- budgets and hardware -------------------------------------------------------------------------

def _check_train_time(c: Context) -> list[Finding]:
    times = {name: log.train_time_ms for name, log in c.backing.items() if log.train_time_ms is not None}
    if not times:
        return [finding("budget.train_time", SKIP, "no log states the training time.")]
    evidence = [Evidence(file=n, line=c.logs[n].lines.get("stop"),
                         values={"train_time_s": seconds(t), "step_s": seconds(_step_ms(c.logs[n]))})
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


def _check_eval_time(c: Context) -> list[Finding]:
    scored, totals, evidence = {}, {}, []
    for name, log in sorted(c.backing.items()):
        metric = c.run_metric(name)
        if metric is None or metric.eval_time_ms is None:
            continue
        scored[name] = metric.eval_time_ms
        totals[name] = _evaluation_time_ms(log)
        evidence.append(Evidence(file=name, line=metric.line, values={
            "mode": metric.mode, "eval_time_s": seconds(metric.eval_time_ms),
            "all_final_evals_s": seconds(totals[name])}))
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


def _check_hardware(c: Context) -> list[Finding]:
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

def _check_provenance(c: Context) -> list[Finding]:
    return check_provenance(c.submission, c.logs, sorted(c.backing), c.score.match is not None)


# -- dataset ---------------------------------------------------------------------------------------

def _check_val_tokens(c: Context) -> list[Finding]:
    counts = {name: log.val_token_count for name, log in c.backing.items() if log.val_token_count is not None}
    if not counts:
        return [finding("data.val_tokens", SKIP, "no log states the validation token count.")]
    evidence = [Evidence(file=n, line=c.logs[n].lines.get("val_token_count"),
                         values={"val_tokens": v, "dataset": c.logs[n].dataset}) for n, v in sorted(counts.items())]
    findings = []
    distinct = sorted(set(counts.values()))
    if len(distinct) > 1:
        findings.append(Finding("data.val_tokens", WARN, f"the logs evaluate on different validation token counts "
                                f"({listed(distinct, '{:,}')}).", evidence))
    unknown = []
    for count in distinct:
        names = sorted(n for n, v in counts.items() if v == count)
        known = _known_split(count, c.logs[names[0]].dataset)
        if known is None:
            unknown.append(count)
        else:
            evidence.append(Evidence(values={"val_tokens": count, "known_as": known}))
    if unknown:
        findings.append(Finding("data.val_tokens", WARN, f"validation token count {listed(unknown, '{:,}')} is not "
                                "a split size seen in accepted records (rules.VAL_TOKEN_COUNTS_BY_DATASET): a "
                                "different split or tokenizer must be justified (R3.4, R3.5).", evidence))
    if not findings:
        findings.append(Finding("data.val_tokens", PASS, f"validation token count {listed(distinct, '{:,}')}, "
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

def _check_seeds(c: Context) -> list[Finding]:
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
        warnings.append(f"claimed seed(s) {listed(missing)} have no log")
    behind = [run.seed for run in c.score.runs]
    distinct_behind = sorted({s for s in behind if s is not None})
    if len(behind) != len(set(behind)) and None not in behind:
        warnings.append(f"the score averages runs that share a seed ({listed(behind)})")
    if c.record_track and c.score.runs and len(distinct_behind) < rules.USUAL_SEED_COUNT:
        warnings.append(f"the score rests on {len(distinct_behind)} distinct seed(s); records usually show "
                        f"{rules.USUAL_SEED_COUNT} (R5.1)")
    evidence = [Evidence(file=n, line=c.logs[n].lines.get("seed"), values={"seed": s}) for n, s in sorted(seeds.items())]
    if claimed:
        evidence.insert(0, Evidence(file=c.submission.metadata_file, values={"seeds": claimed}))
    if warnings:
        return [Finding("claims.seeds", WARN, "; ".join(warnings) + ".", evidence)]
    shown = distinct_behind or sorted(set(seeds.values()))
    return [Finding("claims.seeds", PASS, f"{len(shown)} distinct seed(s) ({listed(shown)}), each with a log.",
                    evidence)]


CHECKS: tuple[Callable[[Context], list[Finding]], ...] = (
    _check_logs_parse, check_score_claims, _check_bytes_code, _check_bytes_model, _check_bytes_total,
    _check_size_cap, _check_train_time, _check_eval_time, _check_hardware, _check_provenance,
    _check_val_tokens, _check_seeds,
)


# -- helpers ---------------------------------------------------------------------------------------



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





