"""Significance of an improvement over a reference: the test the challenge's rule R5.1 implies.

R5.1: a new record must beat the current one by at least delta = rules.RECORD_MARGIN_NATS (0.005 nats),
shown at p < alpha = rules.SIGNIFICANCE_P (0.01), over enough seeds.

Metric. Per-seed val_loss in nats per token when both submissions use the same tokenizer; otherwise
nats per byte, val_bpb * ln 2, since a token of one tokenizer is not a token of another while a byte is
a byte. The result says which metric it used.

Two-sample test (one-sided Welch). New runs x_1..x_n, reference runs y_1..y_m, means x̄ and ȳ, sample
variances s_x² and s_y² (n-1 and m-1 in the denominators). The improvement is d = ȳ - x̄ (positive when
the new submission is better).

    H0: mean(new) >= mean(ref) - delta        (the improvement is at most delta)
    H1: mean(new) <  mean(ref) - delta        (the improvement exceeds delta)
    se = sqrt(s_x²/n + s_y²/m)
    t  = (d - delta) / se
    df = se⁴ / ((s_x²/n)²/(n-1) + (s_y²/m)²/(m-1))          (Welch-Satterthwaite)
    p  = P(T_df >= t)                                          (Student's t, upper tail)

This is scipy.stats.ttest_ind(x + delta, y, equal_var=False, alternative="less").

One-sample test, when the reference is known only as one value mu (e.g. its claimed mean): d = mu - x̄,
se = s_x/sqrt(n), t = (d - delta)/se, df = n - 1, p = P(T_df >= t); this is
scipy.stats.ttest_1samp(x, mu - delta, alternative="less").

Confidence interval of the improvement: d ± t_(1-alpha, df) * se, a two-sided (1 - 2 alpha) interval
(98 % for alpha = 0.01) whose lower end is the one-sided (1 - alpha) bound: H0 is rejected exactly when
that lower end exceeds delta.

Seeds needed: the smallest number of new runs n' for which the same test gives p < alpha if the new
runs kept their observed mean and spread (the reference unchanged). None when d <= delta (no number of
seeds helps) or when the reference's own spread keeps p >= alpha however many new runs there are.

With fewer than two new runs the spread is unknown and no test is made; zero spread on both sides
gives p = 0 when d > delta and p = 1 otherwise.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field

from harness.rules import RECORD_MARGIN_NATS, SIGNIFICANCE_P

MAX_SEEDS_SEARCHED = 1000
NATS_PER_TOKEN = "val_loss (nats per token)"
NATS_PER_BYTE = "nats per byte (val_bpb x ln 2)"
# Scores at or above this (nats per token or per byte) are not losses any model reports; they are
# dropped from the test as garbage rather than overflowing it.
MAX_PLAUSIBLE_SCORE = 1e3


@dataclass
class Sample:
    """One submission's per-run scores, as the significance test needs them."""

    name: str
    val_loss: list[float] = field(default_factory=list)  # nats per token, one per run (may be empty)
    val_bpb: list[float] = field(default_factory=list)  # one per run
    tokenizer: str | None = None  # tokenizer (or dataset) the runs used, when known
    source: str = ""  # where the values come from (logs, submission.json)


@dataclass
class Significance:
    """The test's numbers. improvement = mean(ref) - mean(new), in `metric` units."""

    metric: str
    test: str  # "welch" or "one-sample"
    n_new: int
    n_ref: int
    mean_new: float
    mean_ref: float
    sd_new: float
    sd_ref: float | None
    improvement: float
    margin: float
    t: float
    df: float
    p_value: float
    ci_low: float
    ci_high: float
    ci_level: float
    alpha: float
    seeds_needed: int | None

    @property
    def significant(self) -> bool:
        return self.p_value < self.alpha


def mean(values: list[float]) -> float:
    """The mean of finite values, exactly rounded: statistics.fmean sums in floats and raises OverflowError
    on values near the float range's end (a log can claim 8.9e307), statistics.mean sums exactly."""
    return float(statistics.mean(values))


def variance(values: list[float]) -> float:
    """The sample variance (n - 1); inf where it is finite but beyond a float (statistics.variance raises)."""
    try:
        return statistics.variance(values)
    except OverflowError:
        return math.inf


def stdev(values: list[float]) -> float:
    return math.sqrt(variance(values))


def welch_one_sided(new: list[float], ref: list[float], margin: float = RECORD_MARGIN_NATS,
                    alpha: float = SIGNIFICANCE_P, metric: str = NATS_PER_TOKEN) -> Significance:
    """The one-sided Welch test of H1: mean(new) < mean(ref) - margin (module docstring). Needs at
    least two values on each side; with one reference value use `one_sample_one_sided`."""
    if len(new) < 2 or len(ref) < 2:
        raise ValueError("the Welch test needs at least two runs on each side")
    mean_new, mean_ref = mean(new), mean(ref)
    var_new, var_ref = variance(new), variance(ref)
    improvement = mean_ref - mean_new
    se, df = _welch_se_df(var_new, len(new), var_ref, len(ref))
    return _result(metric, "welch", len(new), len(ref), mean_new, mean_ref, math.sqrt(var_new), math.sqrt(var_ref),
                   improvement, margin, se, df, alpha,
                   _seeds_needed(improvement, margin, alpha, var_new, var_ref, len(ref)))


def one_sample_one_sided(new: list[float], ref_value: float, margin: float = RECORD_MARGIN_NATS,
                         alpha: float = SIGNIFICANCE_P, metric: str = NATS_PER_TOKEN) -> Significance:
    """The one-sided one-sample test of H1: mean(new) < ref_value - margin (module docstring)."""
    if len(new) < 2:
        raise ValueError("the one-sample test needs at least two runs")
    mean_new, var_new = mean(new), variance(new)
    improvement = ref_value - mean_new
    se, df = math.sqrt(var_new / len(new)), float(len(new) - 1)
    return _result(metric, "one-sample", len(new), 1, mean_new, ref_value, math.sqrt(var_new), None,
                   improvement, margin, se, df, alpha, _seeds_needed(improvement, margin, alpha, var_new, None, 1))


def compare(new: Sample, ref: Sample, margin: float = RECORD_MARGIN_NATS,
            alpha: float = SIGNIFICANCE_P) -> tuple[Significance | None, str]:
    """Choose the metric and the test for two samples; (result, why) or (None, why not)."""
    same_tokenizer = new.tokenizer is not None and new.tokenizer == ref.tokenizer
    if same_tokenizer and _complete(new.val_loss, new) and _complete(ref.val_loss, ref) and ref.val_loss:
        metric, new_values, ref_values = NATS_PER_TOKEN, new.val_loss, ref.val_loss
        why = f"both use {new.tokenizer}: per-seed val_loss in nats per token"
    else:
        metric = NATS_PER_BYTE
        new_values = [b * math.log(2) for b in new.val_bpb]
        ref_values = [b * math.log(2) for b in ref.val_bpb]
        why = ("tokenizers differ or are unknown" if not same_tokenizer else "val_loss is not known for every run")
        why += f" ({new.tokenizer or 'unknown'} vs {ref.tokenizer or 'unknown'}): nats per byte = val_bpb x ln 2"
    new_values = [v for v in new_values if _plausible(v)]
    ref_values = [v for v in ref_values if _plausible(v)]
    if len(new_values) < 2:
        return None, f"{new.name} has {len(new_values)} run(s) with a score; the spread needs at least two"
    if not ref_values:
        return None, f"{ref.name} has no score to compare with"
    if len(ref_values) == 1:
        return one_sample_one_sided(new_values, ref_values[0], margin, alpha, metric), why
    return welch_one_sided(new_values, ref_values, margin, alpha, metric), why


def _result(metric: str, test: str, n_new: int, n_ref: int, mean_new: float, mean_ref: float, sd_new: float,
            sd_ref: float | None, improvement: float, margin: float, se: float, df: float, alpha: float,
            seeds_needed: int | None) -> Significance:
    t_value, p_value = _t_and_p(improvement - margin, se, df)
    half = _t_quantile(1 - alpha, df) * se if se > 0 else 0.0
    return Significance(metric, test, n_new, n_ref, mean_new, mean_ref, sd_new, sd_ref, improvement, margin,
                        t_value, df, p_value, improvement - half, improvement + half, 1 - 2 * alpha, alpha,
                        seeds_needed)


def _plausible(score: float) -> bool:
    """A score the test can use: finite, not negative, and below MAX_PLAUSIBLE_SCORE (a larger number
    in a log is garbage, not a loss, and would only overflow the arithmetic)."""
    return math.isfinite(score) and 0.0 <= score < MAX_PLAUSIBLE_SCORE


def _welch_se_df(var_new: float, n_new: int, var_ref: float, n_ref: int) -> tuple[float, float]:
    a, b = var_new / n_new, var_ref / n_ref
    se = math.sqrt(a + b)
    # Welch-Satterthwaite df, computed on a/scale and b/scale: the same number, without overflow.
    scale = max(a, b)
    if scale <= 0:
        return se, float(n_new + n_ref - 2)
    a, b = a / scale, b / scale
    df = (a + b) ** 2 / (a * a / (n_new - 1) + b * b / (n_ref - 1))
    return se, df


def _t_and_p(excess: float, se: float, df: float) -> tuple[float, float]:
    """t = excess / se and the upper-tail p; zero spread decides by the sign of the excess."""
    if se == 0:
        return (math.inf, 0.0) if excess > 0 else (-math.inf if excess < 0 else 0.0, 1.0)
    from scipy import stats  # imported here: scipy takes seconds to import and most checks never need it
    t_value = excess / se
    return t_value, float(stats.t.sf(t_value, df))


def _t_quantile(q: float, df: float) -> float:
    from scipy import stats
    return float(stats.t.ppf(q, df))


def _seeds_needed(improvement: float, margin: float, alpha: float, var_new: float, var_ref: float | None,
                  n_ref: int) -> int | None:
    if improvement <= margin:
        return None
    for n in range(2, MAX_SEEDS_SEARCHED + 1):
        if var_ref is None:
            se, df = math.sqrt(var_new / n), float(n - 1)
        else:
            se, df = _welch_se_df(var_new, n, var_ref, n_ref)
        if _t_and_p(improvement - margin, se, df)[1] < alpha:
            return n
    return None


def _complete(values: list[float], sample: Sample) -> bool:
    return len(values) == len(sample.val_bpb) and all(math.isfinite(v) for v in values)
