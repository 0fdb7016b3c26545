"""Judging scores: for each seed the claim, the script's own final number in the reproduced log and
the trusted number of the rebuilt artifact, side by side; and the claimed mean against the reproduced
seeds' mean.

Known reasons for differences are named, not just reported as a mismatch:
- the script's own evaluator counts the split's tail differently (drops the tokens past its last whole
  window, or scores the final tokens once per trailing window): allowed up to one window's share of
  the split (rules.TAIL_ALLOWANCE_WINDOWS);
- evaluation-time adaptation (score-first TTT, caches): the trusted number is the base model's, so the
  own number is compared with the log's last non-adaptive number instead, and the claim rests on the
  reproduced own evaluation, which the trusted number bounds from above.
A script whose own number is better than its model's trusted number beyond these is caught.
"""

from __future__ import annotations

import math

from harness import rules, stats
from harness.findings import FAIL, PASS, SKIP, WARN, Finding, finding
from harness.judge.evidence import SeedRun


def tail_allowance(run: SeedRun) -> float:
    """How far the script's own evaluator may be from the exact number by treating the tail differently."""
    if not (run.seq_len and run.trusted_tokens and run.trusted_val_bpb):
        return rules.EVAL_CLAIM_TOLERANCE_BPB
    share = rules.TAIL_ALLOWANCE_WINDOWS * run.seq_len / run.trusted_tokens
    return max(rules.EVAL_CLAIM_TOLERANCE_BPB, share * run.trusted_val_bpb)


def trusted_findings(runs: list[SeedRun]) -> list[Finding]:
    """judge.trusted_score per seed with a trusted number."""
    found = []
    for run in runs:
        if run.trusted_val_bpb is None or run.own_val_bpb is None:
            continue
        own, own_mode = (run.base_val_bpb, run.base_mode) if run.adaptive else (run.own_val_bpb, run.own_mode)
        values = dict(seed=run.seed, trusted_val_bpb=run.trusted_val_bpb, own_val_bpb=run.own_val_bpb,
                      own_mode=run.own_mode)
        if own is None:  # adaptive, with no base number in the log to hold the trusted one against
            found.append(finding("judge.trusted_score", WARN, f"seed {run.seed}: the log's score is evaluation-time "
                                 f"adaptation ({run.own_mode}) and it prints no base-model number; trusted "
                                 f"{run.trusted_val_bpb:.6f} is the base model's", file=run.log, line=run.own_line,
                                 **values))
            continue
        allowance = tail_allowance(run)
        delta = own - run.trusted_val_bpb  # negative: the script says its model is better than it is
        values |= dict(compared_mode=own_mode, compared_val_bpb=own, delta=delta, allowance=allowance)
        adaptive = (f"; its score {run.own_val_bpb:.6f} ({run.own_mode}) is evaluation-time adaptation, "
                    f"{run.trusted_val_bpb - run.own_val_bpb:+.2e} from the base model") if run.adaptive else ""
        if abs(delta) <= rules.EVAL_CLAIM_TOLERANCE_BPB:
            status, why = PASS, "agree"
        elif abs(delta) <= allowance:
            status, why = PASS, (f"differ by {delta:+.2e}, within the tail allowance {allowance:.2e} (the script's "
                                 "evaluator treats the split's last window differently)")
        elif delta < 0:
            status, why = FAIL, (f"the script's number is better than its model's trusted number by {-delta:.2e}, "
                                 f"beyond the tail allowance {allowance:.2e}: its evaluation is not what it scores")
        else:
            status, why = WARN, (f"the script's number is worse than the trusted one by {delta:.2e} (beyond "
                                 f"{allowance:.2e}): its evaluator is stricter or scores differently")
        found.append(finding("judge.trusted_score", status, f"seed {run.seed}: trusted {run.trusted_val_bpb:.6f} "
                             f"and own {own:.6f} ({own_mode}) {why}{adaptive}", file=run.log, line=run.own_line,
                             **values))
    return found


def own_score_findings(runs: list[SeedRun], per_seed_claims: dict[int, float], comparable: str | None) -> list[Finding]:
    """judge.own_score per seed: the reproduced log's own number against that seed's claim."""
    found = []
    for run in runs:
        if run.own_val_bpb is None:
            continue
        claimed = per_seed_claims.get(run.seed)
        values = dict(seed=run.seed, reproduced=run.own_val_bpb, claimed=claimed)
        if claimed is None:
            found.append(finding("judge.own_score", SKIP, f"seed {run.seed}: no claim for this seed to compare "
                                 f"with (reproduced {run.own_val_bpb:.6f})", file=run.log, **values))
        elif comparable:
            found.append(finding("judge.own_score", SKIP, f"seed {run.seed}: reproduced {run.own_val_bpb:.6f} against "
                                 f"claimed {claimed:.6f}, not comparable: {comparable}", file=run.log, **values))
        else:
            delta = run.own_val_bpb - claimed
            found.append(finding("judge.own_score", PASS if abs(delta) <= rules.EVAL_CLAIM_TOLERANCE_BPB else WARN,
                                 f"seed {run.seed}: reproduced {run.own_val_bpb:.6f} against claimed {claimed:.6f} "
                                 f"({delta:+.2e})", file=run.log, line=run.own_line, delta=delta, **values))
    return found


def claim_finding(claimed_mean: float | None, claimed_values: list[float], reproduced: list[float],
                  comparable: str | None) -> Finding:
    """judge.claim: the claimed mean against the reproduced mean, within a tolerance from their spread:
    three standard errors of the difference of means (the claim's seeds and ours), and never less than
    rules.EVAL_CLAIM_TOLERANCE_BPB. A reproduced mean worse than the claim beyond it fails."""
    if claimed_mean is None:
        return finding("judge.claim", SKIP, "submission.json states no val_bpb to compare the reproduction with")
    if not reproduced:
        return finding("judge.claim", SKIP, "no seed was reproduced")
    mean = stats.mean(reproduced)
    if comparable:
        return finding("judge.claim", SKIP, f"reproduced mean {mean:.6f} over {len(reproduced)} seed(s) against claimed "
                       f"{claimed_mean:.6f}: not comparable ({comparable})", reproduced_mean=mean, claimed=claimed_mean)
    variance = 0.0
    for sample in (claimed_values, reproduced):
        if len(sample) > 1:
            variance += stats.variance(sample) / len(sample)
    tolerance = max(rules.EVAL_CLAIM_TOLERANCE_BPB, 3 * math.sqrt(variance))
    delta = mean - claimed_mean
    values = dict(reproduced_mean=mean, claimed=claimed_mean, delta=delta, tolerance=tolerance,
                  reproduced_seeds=len(reproduced), claimed_seeds=len(claimed_values))
    text = (f"reproduced mean {mean:.6f} over {len(reproduced)} seed(s) against claimed {claimed_mean:.6f}: "
            f"{delta:+.2e}, tolerance {tolerance:.2e} (3 standard errors of the two means' spread)")
    if abs(delta) <= tolerance:
        return finding("judge.claim", PASS, text, **values)
    if delta > 0:
        return finding("judge.claim", FAIL, text + ": the claim is not reproduced", **values)
    return finding("judge.claim", WARN, text + ": the reproduction is better than claimed", **values)
