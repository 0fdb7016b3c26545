"""Judging a trusted re-evaluation: did it produce a number, do its counts match ours, does it match
the claim. Plain numbers in, findings out."""

from __future__ import annotations

from typing import Any

from harness.findings import FAIL, PASS, SKIP, WARN, Finding, finding


def rescore_findings(outcome: Any, script: str) -> list[Finding]:
    """eval.rescore (pass with the number, or skip with the reason) and eval.accounting, from an
    evaluation outcome (harness.reproduce.evaluation.EvalOutcome: result, adapter, reason, log_tail,
    expected_tokens, expected_bytes)."""
    if outcome.result is None:
        why = outcome.reason or "the worker produced no result"
        tail = " | ".join(outcome.log_tail[-3:])
        return [finding("eval.rescore", SKIP, f"no independent re-evaluation: {why}", file=script,
                        **({"log_tail": tail} if tail else {}))]
    r = outcome.result
    found = [finding("eval.rescore", PASS,
                     f"trusted sliding-window val_bpb {r.val_bpb:.8f} (val_loss {r.val_loss:.8f}) through the "
                     f"{outcome.adapter} adapter", file=script, val_bpb=r.val_bpb, val_loss=r.val_loss,
                     tokens=r.tokens, bytes=r.bytes, seq_len=r.seq_len, stride=r.stride, wall_s=round(r.wall_s, 2),
                     warmup_s=round(r.warmup_s, 2))]
    if outcome.expected_tokens is not None:
        same = (r.tokens, r.bytes) == (outcome.expected_tokens, outcome.expected_bytes)
        found.append(finding(
            "eval.accounting", PASS if same else FAIL,
            "scored tokens and bytes match the harness's own count of the split" if same else
            "the worker's token or byte count differs from the harness's own count: its result is not trusted",
            worker_tokens=r.tokens, worker_bytes=r.bytes,
            expected_tokens=outcome.expected_tokens, expected_bytes=outcome.expected_bytes))
    return found


def compare_with_claim(result: Any, claimed: float, tolerance: float, source: str) -> Finding:
    """eval.claim: the trusted number against the claimed one. Worse than claimed beyond the tolerance
    fails; better than claimed beyond it warns (the claim is conservative, but still not what we see)."""
    delta = result.val_bpb - claimed
    values = dict(trusted_val_bpb=result.val_bpb, claimed_val_bpb=claimed, delta=delta, tolerance=tolerance)
    if abs(delta) <= tolerance:
        return finding("eval.claim", PASS, f"trusted val_bpb is within {tolerance:g} of the claimed {claimed:.8f} "
                       f"({source})", **values)
    if delta > 0:
        return finding("eval.claim", FAIL,
                       f"trusted val_bpb {result.val_bpb:.8f} is worse than the claimed {claimed:.8f} ({source}) by "
                       f"{delta:.2e} > {tolerance:g}; a claim resting on evaluation-time methods (TTT, caches) "
                       "differs from this neural-only number by design", **values)
    return finding("eval.claim", WARN, f"trusted val_bpb {result.val_bpb:.8f} is better than the claimed "
                   f"{claimed:.8f} ({source}) by {-delta:.2e} > {tolerance:g}", **values)
