"""The significance test: hand-computed cases (Student's t with 2 degrees of freedom has a closed form),
agreement with scipy on shifted data, the metric choice, and `harness check --against`."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from scipy import stats as scipy_stats

from harness import rules
from harness.cli import main
from harness.judge.significance import significance_findings
from harness.stats import NATS_PER_BYTE, NATS_PER_TOKEN, Sample, compare, one_sample_one_sided, welch_one_sided

DELTA = rules.RECORD_MARGIN_NATS


def t2_sf(t: float) -> float:
    """Upper tail of Student's t with 2 degrees of freedom: 1/2 - t / (2 sqrt(t² + 2))."""
    return 0.5 - t / (2 * math.sqrt(t * t + 2))


def t2_ppf(q: float) -> float:
    """Its quantile: with a = 2q - 1, t = a sqrt(2 / (1 - a²))."""
    a = 2 * q - 1
    return a * math.sqrt(2 / (1 - a * a))


def test_welch_by_hand() -> None:
    # x̄ = 1.1, ȳ = 2.1, s² = 0.02 each, n = m = 2: se = sqrt(0.01 + 0.01), df = 0.0004 / 0.0002 = 2
    result = welch_one_sided([1.0, 1.2], [2.0, 2.2])
    se = math.sqrt(0.02)
    assert result.df == pytest.approx(2.0, abs=1e-12)
    assert result.improvement == pytest.approx(1.0, abs=1e-12)
    assert result.t == pytest.approx((1.0 - DELTA) / se, rel=1e-12)
    assert result.p_value == pytest.approx(t2_sf((1.0 - DELTA) / se), rel=1e-9)  # 0.009804...
    assert result.p_value == pytest.approx(0.0098046, abs=1e-7)
    half = t2_ppf(1 - rules.SIGNIFICANCE_P) * se
    assert (result.ci_low, result.ci_high) == (pytest.approx(1.0 - half, rel=1e-9), pytest.approx(1.0 + half, rel=1e-9))
    assert result.ci_level == pytest.approx(0.98)
    assert result.significant and result.seeds_needed == 2


def test_one_sample_by_hand() -> None:
    # x = 1.0, 1.2, 1.1: x̄ = 1.1, s² = 0.01, se = sqrt(0.01 / 3), df = 2; reference 1.2
    result = one_sample_one_sided([1.0, 1.2, 1.1], 1.2)
    t_value = (0.1 - DELTA) / math.sqrt(0.01 / 3)
    assert result.test == "one-sample" and result.df == 2.0
    assert result.t == pytest.approx(t_value, rel=1e-9)
    assert result.p_value == pytest.approx(t2_sf(t_value), rel=1e-9)  # 0.1208...
    assert result.p_value == pytest.approx(0.120808, abs=1e-6)
    assert not result.significant
    # t = 0.95 sqrt(n) on n - 1 df: n = 9 gives 2.850 < t_0.99(8) = 2.896, n = 10 gives 3.004 > t_0.99(9) = 2.821
    assert result.seeds_needed == 10


@pytest.mark.parametrize("seed", range(6))
def test_welch_agrees_with_scipy_on_shifted_data(seed: int) -> None:
    rng = np.random.default_rng(seed)
    new = list(rng.normal(1.08, 0.0008 * (seed + 1), size=3 + seed % 3))
    ref = list(rng.normal(1.09, 0.0012, size=3 + (seed + 1) % 4))
    result = welch_one_sided(new, ref)
    expected = scipy_stats.ttest_ind(np.array(new) + DELTA, ref, equal_var=False, alternative="less")
    assert result.t == pytest.approx(-float(expected.statistic), rel=1e-9)
    assert result.p_value == pytest.approx(float(expected.pvalue), rel=1e-9, abs=1e-15)
    assert result.df == pytest.approx(float(expected.df), rel=1e-9)


@pytest.mark.parametrize("seed", range(4))
def test_one_sample_agrees_with_scipy(seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    new = list(rng.normal(2.3, 0.002, size=3 + seed))
    reference = 2.31
    result = one_sample_one_sided(new, reference)
    expected = scipy_stats.ttest_1samp(new, reference - DELTA, alternative="less")
    assert result.t == pytest.approx(-float(expected.statistic), rel=1e-9)
    assert result.p_value == pytest.approx(float(expected.pvalue), rel=1e-9, abs=1e-15)


def test_seeds_needed_is_the_first_n_that_reaches_significance() -> None:
    new, ref = [1.080, 1.082, 1.081], [1.0885, 1.0875, 1.0880]
    result = welch_one_sided(new, ref)
    assert result.seeds_needed == 5 and not result.significant

    def p_with(n: int) -> float:  # n runs with exactly the observed mean and standard deviation
        z = np.linspace(-1.0, 1.0, n)
        fake = np.mean(new) + np.std(new, ddof=1) * (z - z.mean()) / z.std(ddof=1)
        return scipy_stats.ttest_ind(fake + DELTA, ref, equal_var=False, alternative="less").pvalue

    assert p_with(result.seeds_needed - 1) >= rules.SIGNIFICANCE_P > p_with(result.seeds_needed)


def test_no_seeds_help_when_the_improvement_is_below_the_margin() -> None:
    result = welch_one_sided([1.0880, 1.0882], [1.0890, 1.0892])
    assert result.improvement == pytest.approx(0.001) and result.seeds_needed is None and not result.significant


def test_zero_spread_decides_by_the_sign() -> None:
    assert welch_one_sided([1.0, 1.0], [1.1, 1.1]).p_value == 0.0
    assert welch_one_sided([1.1, 1.1], [1.1, 1.1]).p_value == 1.0


def test_too_few_runs_raise_in_the_math_and_skip_in_compare() -> None:
    with pytest.raises(ValueError):
        welch_one_sided([1.0], [1.1, 1.2])
    result, why = compare(Sample("new", [2.0], [1.0]), Sample("ref", [2.1, 2.2], [1.1, 1.2]))
    assert result is None and "needs at least two" in why


def test_same_tokenizer_uses_nats_per_token_else_nats_per_byte() -> None:
    new = Sample("new", [2.30, 2.31, 2.32], [1.060, 1.061, 1.062], "fineweb_8192_bpe.model")
    ref = Sample("ref", [2.34, 2.35, 2.36], [1.070, 1.071, 1.072], "fineweb_8192_bpe.model")
    result, why = compare(new, ref)
    assert result.metric == NATS_PER_TOKEN and result.improvement == pytest.approx(0.04)
    ref.tokenizer = "fineweb_1024_bpe.model"
    result, why = compare(new, ref)
    assert result.metric == NATS_PER_BYTE and result.improvement == pytest.approx(0.01 * math.log(2))
    assert "tokenizers differ" in why


def test_single_reference_value_uses_the_one_sample_test() -> None:
    result, _ = compare(Sample("new", [], [1.060, 1.061, 1.062]), Sample("ref", [], [1.075]))
    assert result.test == "one-sample" and result.n_ref == 1


def test_findings_state_the_verdict_and_numbers() -> None:
    good = Sample("new", [], [1.060, 1.0605, 1.061], None, "logs")
    ref = Sample("ref", [], [1.080, 1.0805, 1.081], None, "logs")
    [item], numbers = significance_findings(good, ref)
    assert item.check == "stats.significance" and item.status == "pass"
    assert "nats per byte" in item.message and numbers["significance"]["significant"] is True
    [item], _ = significance_findings(ref, good)
    assert item.status == "fail"
    [item], numbers = significance_findings(Sample("one", [], [1.0]), ref)
    assert item.status == "skip" and numbers["significance"] is None


def test_check_against_a_real_reference(fixture_records: Path, capsys) -> None:
    new = fixture_records / "track_10min_16mb/2026-04-27_SP8192_LQER_SparseGate_BOSSmearFix_9HpStack_1.0611"
    ref = fixture_records / "track_10min_16mb/2026-04-19_SP8192_CaseOps_GatedAttn_QuantGate_Loop45_PhasedTTT"
    main(["check", "--json", str(new), "--against", str(ref)])
    verdict = json.loads(capsys.readouterr().out)
    [item] = [f for f in verdict["findings"] if f["check"] == "stats.significance"]
    numbers = verdict["measurements"]["significance"]
    # both runs on the caseops sp8192 split with their own tokenizer: nats per token, 3 seeds each
    assert numbers["metric"] == NATS_PER_TOKEN and (numbers["n_new"], numbers["n_ref"]) == (3, 3)
    assert numbers["mean_new"] == pytest.approx((2.32239991 + 2.32423994 + 2.31944212) / 3, abs=1e-9)
    assert numbers["mean_ref"] == pytest.approx((2.33002446 + 2.33198782 + 2.33302383) / 3, abs=1e-9)
    expected = scipy_stats.ttest_ind(np.array([2.32239991, 2.32423994, 2.31944212]) + DELTA,
                                     [2.33002446, 2.33198782, 2.33302383], equal_var=False, alternative="less")
    assert numbers["p_value"] == pytest.approx(float(expected.pvalue), rel=1e-9)
    assert item["status"] == ("pass" if expected.pvalue < rules.SIGNIFICANCE_P else "fail")


def test_welch_df_is_scale_free_and_never_overflows():
    from harness.stats import _welch_se_df

    small = _welch_se_df(0.0004, 3, 0.0001, 4)
    huge = _welch_se_df(0.0004e300, 3, 0.0001e300, 4)
    assert huge[1] == pytest.approx(small[1], rel=1e-12)
    assert small[1] == pytest.approx((0.0004 / 3 + 0.0001 / 4) ** 2 / ((0.0004 / 3) ** 2 / 2 + (0.0001 / 4) ** 2 / 3))


def test_garbage_scores_are_dropped_not_tested():
    from harness.stats import Sample, compare

    new = Sample(name="new", val_bpb=[1.10, 1.11, 2.7e154])
    ref = Sample(name="ref", val_bpb=[1.20, -1.0])
    result, why = compare(new, ref)
    assert result is not None and result.n_new == 2 and result.n_ref == 1 and result.test == "one-sample"


def test_means_and_spreads_of_values_near_the_float_range_end_do_not_overflow():
    """A log may claim val_loss 8.9e307 twice (the fuzz test found it): statistics.fmean raised OverflowError
    there; the mean is exact, and a variance beyond a float is inf, not an exception."""
    from harness import stats

    huge = [8.98846567431158e307, 8.988465674311579e307]
    assert stats.mean(huge) == pytest.approx(8.98846567431158e307)
    assert stats.variance([8.9e307, 0.0]) == math.inf and stats.stdev([8.9e307, 0.0]) == math.inf
    assert stats.stdev([1.0, 2.0, 3.0]) == 1.0
    result = welch_one_sided(huge, [1.0, 1.1])
    assert math.isfinite(result.mean_new)
