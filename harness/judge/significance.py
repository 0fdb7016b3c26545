"""Significance of an improvement over a reference record, as findings, under a named policy (R5.1, R5.2).

The test itself (one-sided Welch, or one-sample against a single value) is harness/stats.py; this module
turns its result into a finding (`stats.significance` for the logs of `harness check --against`,
`judge.significance` for the reproduced seeds of `harness verify`) and the verdict's measurements. The
policies (margin and p-value) are data in rules.SIGNIFICANCE_POLICIES; the finding names the one applied.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from harness import rules
from harness.errors import UserError
from harness.findings import FAIL, PASS, SKIP, Evidence, Finding, finding
from harness.stats import Sample, compare


def policy(name: str) -> dict[str, Any]:
    """A significance policy by name (rules.SIGNIFICANCE_POLICIES), or a UserError listing the names."""
    if name not in rules.SIGNIFICANCE_POLICIES:
        raise UserError(f"unknown significance policy {name!r}; choose one of {', '.join(rules.SIGNIFICANCE_POLICIES)}")
    return rules.SIGNIFICANCE_POLICIES[name]


def significance_findings(new: Sample, ref: Sample, policy_name: str = rules.DEFAULT_SIGNIFICANCE_POLICY,
                          check: str = "stats.significance") -> tuple[list[Finding], dict[str, Any]]:
    """The significance finding and the measurements: `new` against `ref` under the named policy."""
    chosen = policy(policy_name)
    rule = f"policy {policy_name!r}: {chosen['source']}"
    result, why = compare(new, ref, margin=chosen["margin_nats"], alpha=chosen["p"])
    if result is None:
        return [finding(check, SKIP, f"no significance test: {why}.",
                        new_source=new.source, reference_source=ref.source)], {"significance": None, "reason": why}
    level = f"{100 * result.ci_level:g} %"
    seeds = (f"{result.seeds_needed} new runs would give p < {result.alpha:g} at this spread"
             if result.seeds_needed else "no number of new runs reaches p < "
             f"{result.alpha:g} at this mean and spread")
    message = (f"improvement {result.improvement:.5f} ({result.metric}) over {ref.name}, margin {result.margin:g}: "
               f"{result.test} t = {result.t:.3f}, df = {result.df:.1f}, one-sided p = {result.p_value:.3g}; "
               f"{level} CI of the improvement [{result.ci_low:.5f}, {result.ci_high:.5f}]; {seeds}")
    evidence = [Evidence(values={"side": "new", "name": new.name, "source": new.source, "n": result.n_new,
                                 "mean": result.mean_new, "sd": result.sd_new}),
                Evidence(values={"side": "reference", "name": ref.name, "source": ref.source, "n": result.n_ref,
                                 "mean": result.mean_ref, "sd": result.sd_ref})]
    if result.significant:
        status, verdict = PASS, f"beats the reference by more than {result.margin:g} at p < {result.alpha:g} ({rule})"
    else:
        status, verdict = FAIL, f"not shown to beat the reference by {result.margin:g} at p < {result.alpha:g} ({rule})"
    numbers = asdict(result) | {"significant": result.significant, "metric_choice": why, "policy": policy_name}
    return [Finding(check, status, f"{verdict}: {message}. Metric: {why}.", evidence)], \
        {"significance": numbers}
