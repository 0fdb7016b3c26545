"""Judging the probe: every final evaluation the script printed on the probe stream, and the trusted
evaluator's score of the script's model on the same stream, against the entropy bound (bound.py).

Findings: probe.setup (the stream, D, H(D), how training was cut short, or why the probe cannot run),
probe.run (the script ran on the probe stream and printed final evaluation lines), probe.loss (one per
evaluation line: pass, or fail with the numbers), probe.self_check (the trusted evaluator respects the
bound; a fail means the model saw the stream in training, or its logits see the tokens they predict).
The probe's verdict is `flag` when any of these failed, `skip` with the reason when no evaluation line
could be tested, else `pass`: a skip is never a pass.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from harness.findings import FAIL, PASS, SKIP, WARN, Finding, finding
from harness.probe.bound import EntropyBound, BoundTest
from harness.probe.shortening import Shortening
from harness.probe.split import ProbeSplit
from harness.submission.logs import EvalMetric

PASSED, FLAGGED, SKIPPED = "pass", "flag", "skip"
_JUDGED = ("probe.loss", "probe.self_check")


@dataclass
class ProbeRun:
    """What the harness saw of the script's run on the probe stream (plain data from the runner)."""

    completed: bool  # exited with status 0 within the time limit
    reason: str | None = None  # why not
    tail: list[str] = field(default_factory=list)
    log: str | None = None  # the log the metrics were read from
    metrics: list[EvalMetric] = field(default_factory=list)  # every final evaluation line, in order


@dataclass
class SelfCheck:
    """The trusted evaluator's score of the run's artifact on the probe stream (or why there is none)."""

    status: str  # "ok", "skip" or "error", as the evaluation worker says
    reason: str | None = None
    val_loss: float | None = None  # full precision: the float64 loss sum over the scored tokens
    tokens: int | None = None
    adapter: str | None = None


def skipped_probe(shortening: Shortening, where: str) -> tuple[list[Finding], dict]:
    """The probe could not run at all (the script cannot be shortened)."""
    findings = [finding("probe.setup", SKIP, f"probe not run: {shortening.reason}", file=where)]
    return findings, {"probe_verdict": SKIPPED, "probe_reason": shortening.reason, "probe_modes": {}}


def judge_probe(split: ProbeSplit, shortening: Shortening, run: ProbeRun,
                check: SelfCheck | None) -> tuple[list[Finding], dict]:
    """probe.* findings and the measurements: probe_verdict, probe_reason, the stream, one entry per mode."""
    bound = EntropyBound(split.code_lengths)
    findings = [_setup_finding(split, shortening, bound), _run_finding(run)]
    modes: dict[str, dict] = {}
    for metric in run.metrics:
        test = bound.test(metric.val_loss, metric.rounding)
        key = metric.mode if metric.mode not in modes else f"{metric.mode}@{metric.line}"
        modes[key] = _numbers(test, split.entropy_rate) | {"val_bpb": metric.val_bpb, "line": metric.line}
        findings.append(_loss_finding(metric, test, split.entropy_rate, run.log))
    findings.append(_self_check_finding(check, bound, split.entropy_rate))
    verdict, reason = probe_verdict(findings)
    numbers = {
        "probe_verdict": verdict, "probe_reason": reason,
        "probe": {"stream": split.chain.kind, "tokens": int(len(split.stream)), "seed": split.seed,
                  "entropy_rate": split.entropy_rate, "stream_entropy": split.stream_entropy,
                  "alpha": bound.alpha, "min_scored_fraction": bound.min_scored_fraction,
                  "training": shortening.describe(), "manifest": str(split.manifest_path)},
        "probe_modes": modes,
        "probe_self_check": _self_check_numbers(check, bound, split.entropy_rate),
    }
    return findings, numbers


def probe_verdict(findings: list[Finding]) -> tuple[str, str | None]:
    """flag when a judged check failed; skip (with the reason) when no evaluation was tested; else pass."""
    failed = [f for f in findings if f.check in _JUDGED and f.status == FAIL]
    if failed:
        return FLAGGED, "; ".join(f.message.split(":")[0] for f in failed) + ": below the entropy bound"
    if not any(f.check == "probe.loss" and f.status == PASS for f in findings):
        skipped = next((f.message for f in findings if f.status == SKIP), "no evaluation line was tested")
        return SKIPPED, skipped
    return PASSED, None


def _setup_finding(split: ProbeSplit, shortening: Shortening, bound: EntropyBound) -> Finding:
    return finding(
        "probe.setup", PASS,
        f"{split.chain.kind} stream of {len(split.stream):,} tokens (seed {split.seed}) from D fitted on "
        f"{split.chain.fitted_on.get('tokens', 0):,} training tokens: H(D) = {split.entropy_rate:.6f} nats/token, "
        f"D's own loss on the stream {split.stream_entropy:.6f}; training cut short with {shortening.describe()}; "
        f"test: no-hypercompression bound, false alarm <= {bound.alpha:g} per evaluation, over prefixes of at "
        f"least {bound.min_scored_fraction:.0%} of the targets",
        file=str(split.manifest_path), stream=split.chain.kind, tokens=int(len(split.stream)), seed=split.seed,
        entropy_rate=round(split.entropy_rate, 6))


def _run_finding(run: ProbeRun) -> Finding:
    lines = " | ".join(line.strip() for line in run.tail[-3:] if line.strip())
    if not run.metrics:
        why = run.reason or "it printed no final evaluation line (final_* ... val_loss:X val_bpb:Y)"
        return finding("probe.run", SKIP, f"nothing to test: the script on the probe stream {why}"
                       + (f"; last lines: {lines}" if lines else ""), file=run.log)
    if not run.completed:
        return finding("probe.run", WARN, f"the script {run.reason} after printing {len(run.metrics)} final "
                       f"evaluation line(s); those are tested", file=run.log)
    return finding("probe.run", PASS, f"the script ran on the probe stream and printed {len(run.metrics)} final "
                   "evaluation line(s)", file=run.log)


def _loss_finding(metric: EvalMetric, test: BoundTest, entropy_rate: float, log: str | None) -> Finding:
    numbers = (f"val_loss {metric.val_loss:.6f}, floor {test.floor:.6f}, H(D) {entropy_rate:.6f}, "
               f"margin {test.margin:+.6f} nats, p {_p_text(test.p_value)}")
    values = {key: round(value, 6) for key, value in (("val_loss", metric.val_loss), ("floor", test.floor),
                                                      ("entropy_rate", entropy_rate), ("margin", test.margin))}
    if test.flagged:
        return finding("probe.loss", FAIL, f"{metric.mode}: below what any causal, normalised evaluation reports on "
                       f"this stream except with probability {test.alpha:g} ({numbers}): the evaluation saw or "
                       "trained on targets before scoring them, or scored an unnormalised distribution",
                       file=log, line=metric.line, p_value=test.p_value, **values)
    return finding("probe.loss", PASS, f"{metric.mode}: respects the entropy bound ({numbers})", file=log,
                   line=metric.line, p_value=test.p_value, **values)


def _self_check_finding(check: SelfCheck | None, bound: EntropyBound, entropy_rate: float) -> Finding:
    if check is None:
        return finding("probe.self_check", SKIP, "no artifact from the probe run to evaluate")
    if check.status != "ok" or check.val_loss is None:
        return finding("probe.self_check", SKIP, f"the trusted evaluator could not score the model: {check.reason}")
    test = bound.test(check.val_loss, scored=check.tokens)
    numbers = (f"val_loss {check.val_loss:.6f} over {check.tokens:,} targets, floor {test.floor:.6f}, "
               f"H(D) {entropy_rate:.6f}, margin {test.margin:+.6f} nats, p {_p_text(test.p_value)}")
    if test.flagged:
        return finding("probe.self_check", FAIL, f"trusted evaluator: below the bound although it feeds the model only "
                       f"prefixes ({numbers}): the model was trained on the probe's validation stream, its logits "
                       "depend on the tokens they predict (a non-causal model), or the script tampers with the "
                       "evaluation", adapter=check.adapter)
    return finding("probe.self_check", PASS, f"the trusted evaluator's score of the model respects the bound "
                   f"({numbers})", adapter=check.adapter)


def _self_check_numbers(check: SelfCheck | None, bound: EntropyBound, entropy_rate: float) -> dict:
    if check is None or check.status != "ok" or check.val_loss is None:
        return {"status": SKIPPED, "reason": check.reason if check else "no artifact"}
    test = bound.test(check.val_loss, scored=check.tokens)
    return {"status": FLAGGED if test.flagged else PASSED, "tokens": check.tokens, "adapter": check.adapter,
            **_numbers(test, entropy_rate)}


def _numbers(test: BoundTest, entropy_rate: float) -> dict:
    return {"status": FLAGGED if test.flagged else PASSED, "val_loss": test.val_loss, "floor": test.floor,
            "margin": test.margin, "margin_vs_entropy_rate": test.val_loss - entropy_rate, "p_value": test.p_value,
            "scored_prefixes": list(test.scored), "code_length_mean": test.code_length_mean}


def _p_text(p_value: float) -> str:
    return "< 1e-300" if p_value < 1e-300 else f"= {p_value:.3g}"
