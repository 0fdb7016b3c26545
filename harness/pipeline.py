"""The one module that composes stages: `check` (a folder, statically); `verify` and `ci` build on it.

Stages take plain data and return findings; this module runs them in order, gathers their findings
and numbers into one Verdict, and hands that to the caller (the CLI renders it, tools tabulate it).
"""

from __future__ import annotations

import json
import secrets
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Protocol

from harness import rules, stats
from harness.check.changes import (change_measurements, checked_finding, choose_current_record, in_repository,
                                   judge_changes, record_folders)
from harness.check.claims import check_claims, claim_measurements
from harness.check.folder import check_folder
from harness.check.repository import GitRepo
from harness.compliance import scan_path, scan_submission, scanned_nothing
from harness.data.bytes import count_scored
from harness.data.location import resolve_data
from harness.errors import UserError
from harness.findings import FAIL, PASS, SKIP, WARN, Finding, Verdict, finding
from harness.judge.budgets import budget_findings
from harness.judge.evidence import GIVEN, Hardware, SeedRun
from harness.judge.rescore import rescore_findings
from harness.judge.runs import isolation_finding, limits_finding, run_findings, setup_finding, training_length
from harness.judge.scores import claim_finding, own_score_findings, trusted_findings
from harness.judge.significance import significance_findings
from harness.judge.sizes import size_findings
from harness.judge.smoke import smoke_findings
from harness.probe.judge import ProbeRun, SelfCheck, judge_probe, skipped_probe
from harness.probe.shortening import plan_shortening
from harness.probe.split import DEFAULT_PROBE_TOKENS, build_probe_split
from harness.probe.streams import UNIGRAM
from harness.report import to_html, to_markdown, write_json
from harness.reproduce.evaluation import (
    EvalOutcome, EvalRequest, choose_device, evaluate_submission, outcome_from_json, outcome_to_json, smoke_submission,
)
from harness.reproduce.limits import is_enforced
from harness.reproduce.runner import (
    DEFAULT_TIMEOUT_S, REFERENCE_TRAINER_DIR, TIMEOUT, RunPlan, SeedResult, copy_code, describe_hardware,
    read_vocab_size, run_seed, run_seeds,
)
from harness.reproduce.sandbox import network_isolation_available
from harness.stats import Sample
from harness.submission.folder import Submission, load_submission
from harness.submission.logs import parse_log, parse_submission_logs
from harness.submission.scores import claimed_values, sample_of

ATTENTION_SHIM = Path(__file__).resolve().parent / "reproduce" / "shims" / "flash_attn_interface.py"
REFERENCE_RECORD = REFERENCE_TRAINER_DIR.parent / "submissions" / "2026-11-24_reference_baseline_1gpu"
# Words in an evaluation mode's name that mark evaluation-time adaptation (the trusted number is then
# the base model's, and the own number is compared with the log's last non-adaptive one).
ADAPTIVE_WORDS = ("ttt", "cache", "ngram", "n_gram", "lora", "slot", "adapt")


def check(folder: str, against: str | None = None, policy: str = rules.DEFAULT_SIGNIFICANCE_POLICY) -> Verdict:
    """The static stage: files, schema, code bytes, logs vs claims, provenance, compliance scan, and with
    `against` the significance test against that reference folder under the named policy. Runs no code of
    the submission."""
    submission = load_submission(folder)
    verdict = Verdict(submission=str(submission.path), stage="check")
    verdict.extend(check_folder(submission))
    verdict.measurements.update(submission.measurements())
    compliance = scan_submission(submission)
    verdict.extend(compliance.findings())
    verdict.measurements["compliance_verdict"] = compliance.verdict
    run_logs = parse_submission_logs(submission)
    verdict.extend(check_claims(submission, run_logs))
    verdict.measurements.update(claim_measurements(submission, run_logs))
    if against is not None:
        reference = load_submission(against)
        findings, numbers = significance_findings(
            sample_of(submission.path.name, submission.metadata, run_logs),
            sample_of(reference.path.name, reference.metadata, parse_submission_logs(reference)), policy)
        verdict.extend(findings)
        verdict.measurements.update(numbers)
    return verdict


# ---- verify ---------------------------------------------------------------------------------------

VERIFIED, VERIFIED_WITH_WARNINGS, NOT_VERIFIED, INCOMPLETE = (
    "verified", "verified_with_warnings", "not_verified", "incomplete")
# Checks without which nothing was reproduced or re-evaluated: if none of them passed, the verdict is
# incomplete (the reason named), not verified.
STAGE_CHECKS = ("reproduce.run", "eval.rescore")


@dataclass
class VerifyPlan:
    """What `harness verify` was asked to do (the CLI fills it from its arguments)."""

    folder: Path
    out_dir: Path
    seeds: list[int] | None = None  # None: the seeds the submission reports, else rules.DEFAULT_VERIFY_SEEDS
    nproc: int = 1
    data: str | None = None
    tokenizer: str | None = None
    against: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    static_only: bool = False
    artifact: Path | None = None  # --skip-train: evaluate this artifact instead of training
    force: bool = False
    attention_shim: bool = False
    probe: bool = True  # the legality probe after the reproduction (harness/probe/)
    probe_tokens: int = DEFAULT_PROBE_TOKENS
    policy: str = rules.DEFAULT_SIGNIFICANCE_POLICY
    timeout_s: float = DEFAULT_TIMEOUT_S
    device: str | None = None
    allow_network: bool = False  # run the code even where no network namespace can isolate it


@dataclass
class VerifyResult:
    verdict: Verdict
    status: str  # VERIFIED, VERIFIED_WITH_WARNINGS, NOT_VERIFIED or INCOMPLETE
    reason: str = ""  # why incomplete
    files: dict[str, Path] = field(default_factory=dict)  # verdict.json, verdict.md


class VerifyReporter(Protocol):
    """What the caller sees while verify runs (the CLI draws it): stage lines, and the seeds' progress."""

    def stage(self, name: str, message: str) -> None: ...
    def seed_started(self, seed: int, index: int, total: int) -> None: ...
    def seed_line(self, seed: int, line: str) -> None: ...
    def seed_finished(self, result: SeedResult) -> None: ...
    def eval_line(self, seed: int, line: str) -> None: ...


def data_for(submission: Submission, data: str | None, tokenizer: str | None,
             splits: tuple[str, ...] = ("train", "val")) -> tuple[Path, Path, Path | None]:
    """The dataset and tokenizer to run a submission on: the given ones, else the bundled example -- built
    in the folder's own tokenizer when it brings one (a record that changes the tokenizer). The third
    value is that own tokenizer when the data was built in it, else None."""
    own = submission.own_tokenizer() if data is None and tokenizer is None else None
    dataset_dir, tokenizer_path = resolve_data(data, tokenizer, splits, own_tokenizer=own)
    return dataset_dir, tokenizer_path, own


def verify(plan: VerifyPlan, reporter: VerifyReporter) -> VerifyResult:
    """check -> smoke -> reproduce -> re-evaluate -> probe -> judge -> report, each stage's findings in one
    verdict, written to plan.out_dir as verdict.json, verdict.md and verdict.html."""
    clock = {"started": time.monotonic()}
    reporter.stage("check", f"static checks of {plan.folder}")
    verdict = check(str(plan.folder))
    verdict.stage = "verify"
    submission = load_submission(plan.folder)
    claims = claimed_values(submission.metadata)
    seeds = plan.seeds or claims.seeds or list(rules.DEFAULT_VERIFY_SEEDS)
    timings = verdict.measurements.setdefault("timings_s", {})
    timings["check"] = _lap(clock)
    if plan.static_only:
        return _finish(plan, verdict, clock, reason="--static-only: nothing was run")
    _require_network_isolation(plan.allow_network)
    plan.out_dir.mkdir(parents=True, exist_ok=True)
    dataset_dir, tokenizer, own_tokenizer = data_for(submission, plan.data, plan.tokenizer,
                                                     ("val",) if plan.artifact is not None else ("train", "val"))
    code_dir = _stage_code(plan)

    reporter.stage("smoke", "importing the script and building its model on the CPU, in the sandbox")
    smoke = smoke_submission(code_dir, env=_script_env(plan, tokenizer))
    script = submission.counted_code()
    verdict.extend(smoke_findings(smoke.status, smoke.model, smoke.reason, smoke.log_tail,
                                  str(plan.folder / rules.COUNTED_CODE_FILE),
                                  (code_dir / rules.COUNTED_CODE_FILE).read_text(encoding="utf-8", errors="replace"),
                                  script.size if script else None))
    timings["smoke"] = _lap(clock)

    hardware = hardware_of(describe_hardware(plan.nproc), plan.nproc)
    verdict.extend([setup_finding(hardware, dataset_dir.name, tokenizer.name, plan.env, plan.attention_shim,
                                  str(plan.artifact) if plan.artifact else None,
                                  own_tokenizer.relative_to(plan.folder).as_posix() if own_tokenizer else None)])
    if plan.artifact is not None:
        results = [_given_artifact(plan, code_dir)]
    else:
        run_plan = RunPlan(code_dir=code_dir, dataset_dir=dataset_dir.resolve(), tokenizer_path=tokenizer.resolve(),
                           out_dir=(plan.out_dir / "runs").resolve(), nproc=plan.nproc, env=dict(plan.env),
                           timeout_s=plan.timeout_s,
                           vocab_size=None if "VOCAB_SIZE" in plan.env else read_vocab_size(tokenizer))
        reporter.stage("reproduce", f"{len(seeds)} seed(s) of {rules.COUNTED_CODE_FILE} on {dataset_dir.name}, "
                       f"{plan.nproc} process(es) on {hardware.name}")
        results = run_seeds(run_plan, seeds, force=plan.force, reporter=reporter)
    timings["reproduce"] = _lap(clock)

    runs = [seed_run(result, plan.out_dir / "runs", submission) for result in results]
    device = choose_device(plan.device)
    verdict.extend(_reevaluate_all(plan, reporter, runs, results, dataset_dir, tokenizer, device))
    timings["re_evaluate"] = _lap(clock)

    if plan.probe and plan.artifact is None:
        reporter.stage("probe", "the script on a validation stream of known entropy (harness/probe/)")
        probed = probe(plan.folder, str(dataset_dir), tokens=plan.probe_tokens, env=plan.env,
                       out_dir=plan.out_dir / "probe", tokenizer=str(tokenizer), device=plan.device, timeout_s=plan.timeout_s,
                       allow_network=plan.allow_network, stage=reporter.stage,
                       extra_files=(ATTENTION_SHIM,) if plan.attention_shim else ())
        verdict.extend(probed.findings)
        verdict.measurements["probe"] = probed.measurements
        timings["probe"] = _lap(clock)

    reporter.stage("judge", "sizes, budgets, scores, significance")
    comparable = comparability(runs, submission)
    shortened = training_length(plan.env)
    verdict.extend(_judge_runs(plan, submission, claims, runs, results, hardware, comparable, shortened))
    verdict.measurements.update(verify_measurements(runs, hardware, seeds, smoke, comparable, shortened, device))
    timings["judge"] = _lap(clock)
    return _finish(plan, verdict, clock)


def _reevaluate_all(plan: VerifyPlan, reporter: VerifyReporter, runs: list[SeedRun], results: list[SeedResult],
                    dataset_dir: Path, tokenizer: Path, device: str) -> list[Finding]:
    """The trusted evaluation of every artifact; fills each run's trusted numbers, returns the findings."""
    found: list[Finding] = []
    expected = count_scored(dataset_dir, tokenizer, None)
    for run, result in zip(runs, results):
        if run.artifact is None:
            continue
        reporter.stage("re-evaluate", f"seed {run.seed}: trusted stride-{rules.EVAL_STRIDE} evaluation of "
                       f"{Path(run.artifact).name} on {device}")
        outcome = _reevaluate(plan, result, run, dataset_dir, tokenizer, device, expected,
                              lambda line, seed=run.seed: reporter.eval_line(seed, line))
        found.extend(rescore_findings(outcome, run.log))
        if outcome.result is not None:
            run.trusted_val_bpb, run.trusted_val_loss = outcome.result.val_bpb, outcome.result.val_loss
            run.trusted_tokens, run.seq_len = outcome.result.tokens, outcome.result.seq_len
            run.trusted_wall_s = outcome.result.wall_s
    return found


def _judge_runs(plan: VerifyPlan, submission, claims, runs: list[SeedRun], results: list[SeedResult],
                hardware: Hardware, comparable: str | None, shortened: str | None) -> list[Finding]:
    """The judge's findings on the reproduced runs: outcomes, isolation, sizes, budgets, scores, significance."""
    per_seed_claims = {seed: values["val_bpb"] for seed, values in claims.per_seed.items() if "val_bpb" in values}
    found = run_findings(runs)
    if any(run.reproduced for run in runs):
        reproduced_results = [result for result in results if result.ok]
        found.append(isolation_finding([result.network_isolated for result in reproduced_results]))
        found.append(limits_finding(*_limits_held(reproduced_results)))
    found += size_findings(runs, claims.bytes_total, "submission.json bytes_total")
    found += budget_findings(runs, hardware, shortened)
    found += own_score_findings(runs, per_seed_claims, comparable)
    found += trusted_findings(runs)
    reproduced = [run.own_val_bpb for run in runs if run.reproduced and run.own_val_bpb is not None]
    found.append(claim_finding(claims.val_bpb, list(per_seed_claims.values()), reproduced, comparable))
    return found + _significance(plan, submission, runs)


def _require_network_isolation(allow_network: bool) -> None:
    """Refuse, before any of the submission's code runs, where the runs could not be cut off the network."""
    if not allow_network and not network_isolation_available():
        raise UserError("this machine cannot cut the runs off the network (no user and network namespace: "
                        "unshare -rn fails); pass --allow-network to run the submission's code anyway")


def _lap(clock: dict) -> float:
    now = time.monotonic()
    lap = now - clock.get("lap", clock["started"])
    clock["lap"] = now
    return round(lap, 3)


def _stage_code(plan: VerifyPlan) -> Path:
    """<out>/code: the folder's code as the runs get it (logs and artifacts left out), plus the
    attention shim when asked for. Every seed's work dir is a copy of it."""
    code_dir = (plan.out_dir / "code").resolve()
    if code_dir.exists():
        shutil.rmtree(code_dir)
    copy_code(plan.folder, code_dir)
    if plan.attention_shim:
        shutil.copyfile(ATTENTION_SHIM, code_dir / ATTENTION_SHIM.name)
    return code_dir


def hardware_of(name: str, nproc: int) -> Hardware:
    """The hardware the runs ran on, and the factor that projects its times to the reference hardware."""
    reference = nproc == rules.REFERENCE_WORLD_SIZE and "H100" in name and "PCIe" not in name
    for kind, factor in rules.TIME_FACTORS_TO_H100.items():
        if kind in name and "PCIe" not in name:
            scale = nproc / rules.REFERENCE_WORLD_SIZE
            return Hardware(name, nproc, reference, factor * scale,
                            f"{kind} to H100 x{factor:g} (rules.TIME_FACTORS_TO_H100), {nproc} to "
                            f"{rules.REFERENCE_WORLD_SIZE} GPUs x{scale:g} assuming perfect scaling")
    return Hardware(name, nproc, reference)


def _given_artifact(plan: VerifyPlan, code_dir: Path) -> SeedResult:
    """--skip-train: the given artifact stands for one run (seed 0) that was not reproduced."""
    artifact = plan.artifact.resolve()
    size = artifact.stat().st_size
    return SeedResult(seed=0, status=GIVEN, work_dir=str(code_dir), console_log="", artifact=str(artifact),
                      artifact_bytes=size,
                      total_bytes_measured=size + (code_dir / rules.COUNTED_CODE_FILE).stat().st_size)


def seed_run(result: SeedResult, runs_dir: Path, submission) -> SeedRun:
    """The judge's view of one seed: the runner's result and the numbers of its reproduced log."""
    log_path = runs_dir / (result.log or result.console_log) if (result.log or result.console_log) else None
    run = SeedRun(seed=result.seed, status=result.status, log=str(log_path or result.work_dir), error=result.error,
                  tail=result.tail, wall_s=result.wall_s or None, artifact_bytes=result.artifact_bytes,
                  logged_total_bytes=result.bytes_total)
    if result.artifact is not None:
        run.artifact = str(runs_dir / result.artifact)
        run.code_bytes = result.total_bytes_measured - result.artifact_bytes
    if log_path is None or not log_path.is_file():
        return run
    parsed = parse_log(log_path)
    final = parsed.score()
    if final is not None:
        run.own_val_bpb, run.own_val_loss, run.own_mode, run.own_line = (
            final.val_bpb, final.val_loss, final.mode, final.line)
        run.adaptive = is_adaptive(final.mode)
        base = [m for m in parsed.metrics if not m.diagnostic and not is_adaptive(m.mode)]
        if run.adaptive and base:
            last = max(base, key=lambda m: m.line)
            run.base_val_bpb, run.base_mode = last.val_bpb, last.mode
    run.train_time_s = parsed.train_time_ms / 1000 if parsed.train_time_ms is not None else None
    times = [m.eval_time_ms for m in parsed.finals.values() if m.eval_time_ms is not None]
    run.eval_time_s = sum(times) / 1000 if times else None
    run.steps = parsed.last_step
    run.val_token_count, run.dataset = parsed.val_token_count, parsed.dataset
    return run


def _script_env(plan: VerifyPlan, tokenizer: Path) -> dict[str, str]:
    """What the script's hyperparameters see outside a run (smoke test, a given artifact): the user's
    variables and the tokenizer's vocabulary, as the runner sets them for a run."""
    return ({} if "VOCAB_SIZE" in plan.env else {"VOCAB_SIZE": str(read_vocab_size(tokenizer))}) | plan.env


def is_adaptive(mode: str) -> bool:
    """An evaluation mode that adapts at evaluation time (test-time training, caches, n-gram mixing)."""
    return any(word in mode.lower() for word in ADAPTIVE_WORDS)


def _reevaluate(plan: VerifyPlan, result: SeedResult, run: SeedRun, dataset_dir: Path, tokenizer: Path,
                device: str, expected: tuple[int, int], on_line: Callable[[str], None]) -> EvalOutcome:
    """The trusted evaluation of one seed's artifact, reused from <out>/eval/seed_<SEED>.json when the
    same artifact (size and mtime) was evaluated before and --force was not given."""
    cache = plan.out_dir / "eval" / f"seed_{run.seed}.json"
    artifact = Path(run.artifact)
    key = {"artifact": str(artifact), "bytes": artifact.stat().st_size, "mtime_ns": artifact.stat().st_mtime_ns,
           "device": device, "expected": list(expected)}
    if cache.is_file() and not plan.force:
        try:
            saved = json.loads(cache.read_text(encoding="utf-8"))
            if saved.get("key") == key:
                return outcome_from_json(saved["outcome"])
        except (ValueError, KeyError, TypeError):
            pass  # a torn or foreign file: evaluate again
    code_dir = plan.out_dir / "runs" / result.work_dir if plan.artifact is None else Path(result.work_dir)
    request = EvalRequest(submission_dir=str(code_dir.resolve()), artifact=str(artifact.resolve()),
                          dataset_dir=str(dataset_dir.resolve()), tokenizer=str(tokenizer.resolve()), device=device,
                          compile="auto" if device == "cuda" else "never", env=dict(result.env) or _script_env(plan, tokenizer))
    outcome = evaluate_submission(request, nproc=plan.nproc if device == "cuda" else 1, expected=expected,
                                  on_line=on_line)
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps({"key": key, "outcome": outcome_to_json(outcome)}, indent=2), encoding="utf-8")
    return outcome


def comparability(runs: list[SeedRun], submission) -> str | None:
    """Why the reproduced numbers cannot be held against the claims (other data, a shortened run), or
    None when they can: the reproduced logs must show the split size and step count of the folder's."""
    logs = parse_submission_logs(submission)
    claimed_tokens = {log.val_token_count for log in logs.values() if log.val_token_count}
    claimed_steps = [log.last_step for log in logs.values() if log.last_step]
    done = [run for run in runs if run.ok]
    if not done:
        return "no seed completed"
    if any(run.status == GIVEN for run in done):
        return "the artifact was given (--skip-train), not reproduced"
    tokens = {run.val_token_count for run in done if run.val_token_count}
    if claimed_tokens and tokens and not tokens <= claimed_tokens:
        return (f"reproduced on a validation split of {', '.join(f'{t:,}' for t in sorted(tokens))} tokens, the "
                f"folder's logs on {', '.join(f'{t:,}' for t in sorted(claimed_tokens))}")
    steps = [run.steps for run in done if run.steps]
    if claimed_steps and steps and not 0.9 <= min(steps) / min(claimed_steps) <= 1.1:
        return (f"{min(steps)} steps reproduced against {min(claimed_steps)} in the folder's logs (a shortened run, "
                "or a wall-clock cap on faster or slower hardware)")
    return None


def _limits_held(results: list[SeedResult]) -> tuple[dict[str, str], dict[str, str]]:
    """(limit -> how it was enforced, limit -> why not) over the runs; a limit any run lacked is missing."""
    enforced, missing = {}, {}
    for result in results:
        for name, how in result.limits.items():
            if is_enforced(how):
                enforced.setdefault(name, how)
            else:
                missing.setdefault(name, how)
    return {name: how for name, how in enforced.items() if name not in missing}, missing


def _significance(plan: VerifyPlan, submission, runs: list[SeedRun]) -> list[Finding]:
    """judge.significance: the reproduced seeds against --against, or against the reference baseline
    record when the folder claims a record on the main track; otherwise a skip saying why."""
    against = plan.against
    if against is None:
        if submission.track() != rules.RECORD_TRACK:
            return [finding("judge.significance", SKIP, "not a record-track submission and no --against given: "
                            "no significance test")]
        if not REFERENCE_RECORD.is_dir():
            return [finding("judge.significance", SKIP, "no --against given and the reference record "
                            f"{REFERENCE_RECORD.name} is not here")]
        against = str(REFERENCE_RECORD)
    reference = load_submission(against)
    done = [r for r in runs if r.ok and r.own_val_bpb is not None]
    new = Sample(f"{submission.path.name} (reproduced)", [r.own_val_loss for r in done],
                 [r.own_val_bpb for r in done], _dataset_of(done), f"reproduced logs ({len(done)} seeds)")
    ref = sample_of(reference.path.name, reference.metadata, parse_submission_logs(reference))
    findings, _ = significance_findings(new, ref, plan.policy, check="judge.significance")
    return findings


def _dataset_of(runs: list[SeedRun]) -> str | None:
    names = {run.dataset for run in runs} - {None}
    return names.pop() if len(names) == 1 else None


def verify_measurements(runs: list[SeedRun], hardware: Hardware, seeds: list[int], smoke, comparable: str | None,
                        shortened: str | None, device: str) -> dict:
    done = [run for run in runs if run.ok]
    own = [run.own_val_bpb for run in done if run.own_val_bpb is not None]
    trusted = [run.trusted_val_bpb for run in done if run.trusted_val_bpb is not None]
    return {
        "seeds": seeds, "hardware": hardware.name, "nproc": hardware.nproc, "eval_device": device,
        "time_projection": {"factor": hardware.time_factor, "source": hardware.factor_source}
        if hardware.time_factor is not None else None,
        "shortened": shortened, "comparable_with_claim": comparable is None, "not_comparable_because": comparable,
        "smoke": {"status": smoke.status, **smoke.model},
        "reproduced_val_bpb_mean": stats.mean(own) if own else None,
        "trusted_val_bpb_mean": stats.mean(trusted) if trusted else None,
        "per_seed": [asdict(run) | {"total_bytes": run.total_bytes} for run in runs],
    }


def verify_status(verdict: Verdict) -> tuple[str, str]:
    """The overall word and, when incomplete, why."""
    counts = verdict.counts()
    if counts[FAIL]:
        return NOT_VERIFIED, ""
    for check_id in STAGE_CHECKS:
        ran = [f for f in verdict.findings if f.check == check_id]
        if not any(f.status == PASS for f in ran):
            why = next((f.message for f in ran), f"no {check_id} finding: that stage did not run")
            return INCOMPLETE, f"{check_id}: {why}"
    return (VERIFIED_WITH_WARNINGS, "") if counts[WARN] else (VERIFIED, "")


def _finish(plan: VerifyPlan, verdict: Verdict, clock: dict, reason: str = "") -> VerifyResult:
    status, why = verify_status(verdict)
    if reason and status != NOT_VERIFIED:
        status, why = INCOMPLETE, reason
    verdict.measurements["verify_status"] = status
    verdict.measurements["incomplete_because"] = why or None
    verdict.measurements.setdefault("timings_s", {})["total"] = round(time.monotonic() - clock["started"], 3)
    files = {}
    if not plan.static_only:
        files = write_reports(verdict, plan.out_dir)
    return VerifyResult(verdict, status, why, files)


def write_reports(verdict: Verdict, out_dir: Path) -> dict[str, Path]:
    """verdict.json (schema-valid), verdict.md (a PR comment) and verdict.html (the page with plots, from
    the verdict and the run logs it names) in the run dir."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"json": out_dir / "verdict.json", "markdown": out_dir / "verdict.md", "html": out_dir / "verdict.html"}
    with paths["json"].open("w", encoding="utf-8") as stream:
        write_json(verdict, stream)
    paths["markdown"].write_text(to_markdown(verdict), encoding="utf-8")
    paths["html"].write_text(to_html(verdict), encoding="utf-8")
    return paths


# ---- ci -------------------------------------------------------------------------------------------

def ci(repo: str, base: str, head: str, current_record: str | None = None,
       policy: str = rules.DEFAULT_SIGNIFICANCE_POLICY) -> Verdict:
    """The pull-request gate: what the pull request changes since it forked from base (one new folder under
    records/<track>/ and nothing else: ci.* findings), then the full static `check` of that folder as it is
    at head, against the main track's current record (or `current_record`) when the folder is on that track.
    Reads the repository with git; runs no code of the submission."""
    git = GitRepo(repo)
    head_commit = git.commit(head)
    base_commit = git.merge_base(git.commit(base), head_commit)
    changes = git.changes(base_commit, head_commit)
    judged = judge_changes(changes, record_folders(git, base_commit))
    verdict = Verdict(submission=judged.folder or f"{base}...{head}", stage="ci")
    verdict.extend(judged.findings)
    verdict.measurements["ci"] = {
        "base": base, "head": head, "base_commit": base_commit, "head_commit": head_commit,
        "folders": judged.folders, **change_measurements(changes)}
    if judged.folder is None:
        return verdict
    with tempfile.TemporaryDirectory(prefix="harness-ci-") as scratch:
        folder = git.export(head_commit, judged.folder, Path(scratch) / "head")
        against, record_finding = choose_current_record(git, base_commit, judged.folder, current_record,
                                                        Path(scratch) / "base")
        checked = check(str(folder), against, policy)
    verdict.extend([record_finding, checked_finding(judged.folder, scanned_nothing(checked.findings),
                                                    checked.findings)])
    verdict.extend(in_repository(checked.findings, judged.folder))
    verdict.measurements.update(checked.measurements)
    verdict.measurements["ci"]["current_record"] = next((e.file for e in record_finding.evidence), None)
    return verdict


# ---- probe ----------------------------------------------------------------------------------------

def probe(folder: str | Path, data: str | None = None, stream: str = UNIGRAM, tokens: int = DEFAULT_PROBE_TOKENS,
          env: dict[str, str] | None = None, out_dir: str | Path | None = None, *, tokenizer: str | None = None,
          seed: int | None = None, device: str | None = None, timeout_s: float = DEFAULT_TIMEOUT_S,
          allow_network: bool = False, stage: Callable[[str, str], None] | None = None,
          extra_files: tuple[Path, ...] = ()) -> Verdict:
    """The legality probe (stage "probe"): the folder's script, its training cut short, run on a validation
    split drawn from a known distribution D (`stream`, `tokens` long, from `seed` or a fresh one), every final
    evaluation it prints and the trusted evaluator's score of its model tested against D's entropy bound
    (harness/probe/). Everything is written under `out_dir` (default runs/probe/<folder>). Like verify, it
    refuses to run the code where no network namespace can isolate it, unless `allow_network`."""
    folder = Path(folder).resolve()
    if not (folder / rules.COUNTED_CODE_FILE).is_file():
        raise UserError(f"holds no {rules.COUNTED_CODE_FILE} to probe", folder)
    out = Path(out_dir or Path("runs") / "probe" / folder.name).resolve()
    say = stage or (lambda name, message: None)
    verdict = Verdict(submission=str(folder), stage="probe")
    scan = scan_path(str(folder))
    verdict.measurements["compliance_verdict"] = scan.verdict
    shortening = plan_shortening(scan.env_vars, [unit.text for unit in scan.sources.run_units()], dict(env or {}))
    if shortening.reason:
        findings, numbers = skipped_probe(shortening, str(folder / rules.COUNTED_CODE_FILE))
    else:
        _require_network_isolation(allow_network)
        dataset_dir, tokenizer_path, _ = data_for(load_submission(folder), data, tokenizer, ("train",))
        vocab = read_vocab_size(tokenizer_path)
        seed = secrets.randbelow(2**31) if seed is None else seed
        say("stream", f"{tokens:,} tokens of the {stream} stream fitted on {dataset_dir.name} (seed {seed})")
        split = build_probe_split(dataset_dir.resolve(), out, stream, tokens, seed, vocab, rules.BOS_ID)
        say("run", f"{rules.COUNTED_CODE_FILE} on the probe stream, {shortening.describe()}")
        plan = RunPlan(code_dir=folder, dataset_dir=split.dataset_dir, tokenizer_path=tokenizer_path.resolve(),
                       out_dir=out / "run", env=shortening.env, timeout_s=timeout_s, vocab_size=vocab,
                       extra_files=extra_files)
        result = run_seed(plan, rules.DEFAULT_VERIFY_SEEDS[0])
        log = out / "run" / (result.log or result.console_log)
        run = ProbeRun(completed=result.returncode == 0 and result.status != TIMEOUT, reason=result.error,
                       tail=result.tail, log=str(log), metrics=parse_log(log).metrics)
        check = None
        if result.artifact is not None:
            say("self-check", "the trusted evaluator on the probe stream with the run's model")
            outcome = evaluate_submission(EvalRequest(
                submission_dir=str(out / "run" / result.work_dir), artifact=str(out / "run" / result.artifact),
                dataset_dir=str(split.dataset_dir), tokenizer=str(tokenizer_path.resolve()),
                device=choose_device(device), env=result.env))
            scored = outcome.result
            check = SelfCheck(outcome.status, outcome.reason, scored.val_loss if scored else None,
                              scored.tokens if scored else None, outcome.adapter)
        findings, numbers = judge_probe(split, shortening, run, check)
    verdict.extend(findings)
    verdict.measurements.update(numbers)
    return verdict
