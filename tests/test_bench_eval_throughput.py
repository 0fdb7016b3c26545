"""bench/eval_throughput.py's warm-up prefix: it must meet every batch shape the timed runs meet."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

from eval_throughput import warmup_length  # noqa: E402
from harness.evaluator import WindowPlan  # noqa: E402


def batch_shapes(num_tokens: int, seq_len: int, stride: int, batch_windows: int) -> set:
    """The (windows, length, scored) shapes the fast path runs: its regular windows in batches, the
    first and last windows on their own."""
    plan = WindowPlan(num_tokens, seq_len, stride)
    lo, hi = plan.regular_range()
    shapes = {("regular", min(batch_windows, hi - start)) for start in range(lo, hi, batch_windows)}
    others = [k for k in (0, plan.num_windows - 1) if not lo <= k < hi]
    return shapes | {("single", plan.length(k), plan.scored(k)) for k in others}


@pytest.mark.parametrize("num_tokens,seq_len,stride,batch_windows", [
    (6_202_163, 1024, 64, 256),  # the benchmark's stream
    (62_021_633, 1024, 64, 256),  # the split
    (100_000, 128, 16, 7),
    (50_001, 64, 64, 5),  # non-overlapping windows
    (3_000, 64, 16, 8),  # --small: shorter than the minimum, the whole stream
])
def test_the_warm_up_meets_every_shape_of_the_timed_runs_and_is_short(num_tokens, seq_len, stride, batch_windows):
    prefix = warmup_length(num_tokens, seq_len, stride, batch_windows)
    assert batch_shapes(prefix, seq_len, stride, batch_windows) == batch_shapes(num_tokens, seq_len, stride,
                                                                               batch_windows)
    step = batch_windows * stride
    assert min(num_tokens, seq_len + 3 * step + 7) <= prefix < max(num_tokens + 1, seq_len + 4 * step + 7)
    assert WindowPlan(prefix, seq_len, stride).length(0) == WindowPlan(num_tokens, seq_len, stride).length(0)


def test_a_fixed_prefix_would_have_missed_the_tail():
    # What the benchmark did before: a fixed prefix; its last batch is full where the stream's is not.
    fixed = 1024 + 3 * 256 * 64 + 7
    assert batch_shapes(fixed, 1024, 64, 256) != batch_shapes(6_202_163, 1024, 64, 256)
