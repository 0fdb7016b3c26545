"""Judging time budgets (R2.1, R2.2) from the reproduced runs, with the phases apart.

For each seed: the training loop (the script's own timer in its log), the script's own final
evaluations (their logged times), and everything else in the process as the harness measured it
(start-up, compilation, and the work after training: EMA, quantisation, calibration, compression).
On the reference hardware the budgets are judged as measured. Elsewhere the times are projected with
a labelled factor (rules.TIME_FACTORS_TO_H100, and nproc / 8) and the official budget is never reported
as checked: a projection over the budget warns, one within it is a skip that shows the numbers.
"""

from __future__ import annotations

from harness import rules
from harness.findings import FAIL, PASS, SKIP, WARN, Finding, finding
from harness.judge.evidence import Hardware, SeedRun


def budget_findings(runs: list[SeedRun], hardware: Hardware, shortened: str | None) -> list[Finding]:
    """judge.train_time, judge.eval_time and judge.post_train, one each per completed seed."""
    found = []
    for run in (r for r in runs if r.reproduced):
        found.append(_budget("judge.train_time", "training", run, run.train_time_s, rules.TRAIN_TIME_LIMIT_S,
                             hardware, shortened))
        found.append(_budget("judge.eval_time", "its own evaluation", run, run.eval_time_s, rules.EVAL_TIME_LIMIT_S,
                             hardware, None))
        found.append(_post_train(run, hardware))
    return found


def _label(hardware: Hardware) -> str:
    return (f"measured on {hardware.name}; projected to {rules.REFERENCE_HARDWARE} with factor "
            f"{hardware.time_factor:.3g} ({hardware.factor_source})")


def _budget(check: str, phase: str, run: SeedRun, seconds: float | None, limit: float, hardware: Hardware,
            shortened: str | None) -> Finding:
    if seconds is None:
        return finding(check, SKIP, f"seed {run.seed}: the log states no time for {phase}", file=run.log, seed=run.seed)
    note = f" (training length set: {shortened})" if shortened else ""
    values = dict(seed=run.seed, measured_s=round(seconds, 3), limit_s=limit, hardware=hardware.name)
    if hardware.reference:
        status = PASS if seconds <= limit else FAIL
        return finding(check, status, f"seed {run.seed}: {phase} {seconds:.1f} s on {hardware.name} "
                       f"{'within' if status == PASS else 'over'} the {limit:g} s budget{note}", file=run.log, **values)
    projected = hardware.project(seconds)
    if projected is None:
        return finding(check, SKIP, f"seed {run.seed}: {phase} took {seconds:.1f} s on {hardware.name}; no projection "
                       f"to {rules.REFERENCE_HARDWARE} from this hardware, so the {limit:g} s budget is not checked{note}",
                       file=run.log, **values)
    values["projected_s"] = round(projected, 3)
    status = WARN if projected > limit else SKIP
    return finding(check, status, f"seed {run.seed}: {phase} {seconds:.1f} s, ≈ {projected:.1f} s projected "
                   f"({_label(hardware)}): {'over' if status == WARN else 'within'} the {limit:g} s budget by "
                   f"projection only, not checked on {rules.REFERENCE_HARDWARE}{note}", file=run.log, **values)


def _post_train(run: SeedRun, hardware: Hardware) -> Finding:
    if run.wall_s is None or run.train_time_s is None:
        return finding("judge.post_train", SKIP, f"seed {run.seed}: the phases cannot be told apart (no training "
                       "time in the log)", file=run.log, seed=run.seed)
    evaluation = run.eval_time_s or 0.0
    other = max(run.wall_s - run.train_time_s - evaluation, 0.0)
    values = dict(seed=run.seed, wall_s=round(run.wall_s, 3), train_s=round(run.train_time_s, 3),
                  own_eval_s=round(evaluation, 3), other_s=round(other, 3))
    phases = (f"process {run.wall_s:.1f} s = training {run.train_time_s:.1f} + own evaluation {evaluation:.1f} + "
              f"other {other:.1f} (start-up, compilation, EMA, quantisation, compression)")
    scale = 1.0 if hardware.reference else hardware.time_factor
    if scale is None:
        return finding("judge.post_train", SKIP, f"seed {run.seed}: {phases}; not projectable from {hardware.name}",
                       file=run.log, **values)
    train, rest = run.train_time_s * scale, other * scale
    if train <= rules.TRAIN_TIME_LIMIT_S < train + rest:
        return finding("judge.post_train", WARN, f"seed {run.seed}: {phases}; the training loop is within the "
                       f"{rules.TRAIN_TIME_LIMIT_S:g} s budget but the work outside it takes the process past it"
                       + ("" if hardware.reference else " (by projection)") + ": where it counts is disputed",
                       file=run.log, **values)
    return finding("judge.post_train", PASS, f"seed {run.seed}: {phases}", file=run.log, **values)
