"""The trusted evaluator: the fast path equals the plain float64 reference to 1e-9, every target is
scored exactly once, the window plan follows the contract, and bytes follow the leading-space rule."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from harness.evaluator import WindowPlan, evaluate, evaluate_naive, target_bytes, byte_luts, token_losses
from evaluator_models import VOCAB, CausalConvModel, TinyTransformer, byte_table, logits_fn, random_stream

SEQ_LEN, STRIDE = 16, 5


def relative(a: float, b: float) -> float:
    return abs(a - b) / abs(b)


# (stream length, seq_len, stride): divisible and not by the stride, shorter than a window, exactly
# one window, stride == window, stride 1, the smallest stream.
CASES = [
    (1 + SEQ_LEN + 7 * STRIDE, SEQ_LEN, STRIDE),  # overhang divides by the stride: last window full
    (1 + SEQ_LEN + 7 * STRIDE + 3, SEQ_LEN, STRIDE),  # final window shorter, scores 3
    (11, SEQ_LEN, STRIDE),  # shorter than one window
    (SEQ_LEN + 1, SEQ_LEN, STRIDE),  # exactly one window
    (200, SEQ_LEN, SEQ_LEN),  # non-overlapping evaluation
    (203, 8, 8),  # non-overlapping, final window shorter
    (60, 8, 1),
    (2, SEQ_LEN, STRIDE),
]


@pytest.mark.parametrize("model_cls", [TinyTransformer, CausalConvModel])
@pytest.mark.parametrize("length,seq_len,stride", CASES)
def test_fast_path_equals_naive_reference(model_cls, length, seq_len, stride):
    model = model_cls()
    stream, table = random_stream(length), byte_table()
    # A small batch so the regular windows span several batches, one of them partial.
    fast = evaluate(logits_fn(model), stream, table, seq_len=seq_len, stride=stride, batch_tokens=3 * seq_len)
    naive = evaluate_naive(logits_fn(model), stream, table, seq_len=seq_len, stride=stride)
    assert fast.tokens == naive.tokens == length - 1
    assert fast.bytes == naive.bytes
    assert fast.windows == naive.windows == WindowPlan(length, seq_len, stride).num_windows
    assert relative(fast.loss_sum_nats, naive.loss_sum_nats) < 1e-9
    assert relative(fast.val_bpb, naive.val_bpb) < 1e-9
    assert math.isclose(fast.val_bpb, fast.loss_sum_nats / math.log(2) / fast.bytes, rel_tol=1e-12)


def test_warmup_is_the_time_to_the_first_batch():
    model, table = TinyTransformer(), byte_table()
    batched = evaluate(logits_fn(model), random_stream(400), table, seq_len=SEQ_LEN, stride=STRIDE,
                       batch_tokens=3 * SEQ_LEN)
    assert 0.0 < batched.warmup_s < batched.wall_s
    single = evaluate(logits_fn(model), random_stream(SEQ_LEN // 2), table, seq_len=SEQ_LEN, stride=STRIDE)
    assert single.windows == 1 and single.warmup_s == 0.0  # no batch of full windows: nothing to warm up


def test_batched_naive_equals_one_window_at_a_time():
    model, stream, table = TinyTransformer(), random_stream(123), byte_table()
    one = evaluate_naive(logits_fn(model), stream, table, seq_len=SEQ_LEN, stride=STRIDE)
    batched = evaluate_naive(logits_fn(model), stream, table, seq_len=SEQ_LEN, stride=STRIDE, batch_windows=7)
    assert batched.tokens == one.tokens and batched.bytes == one.bytes and batched.windows == one.windows
    assert relative(batched.loss_sum_nats, one.loss_sum_nats) < 1e-12


def test_result_depends_on_the_window_context():
    """The models are sensitive to context: stride 5 and stride 16 give different numbers, so a
    mis-placed window could not pass the equality tests by accident."""
    model, stream, table = TinyTransformer(), random_stream(150), byte_table()
    overlapping = evaluate(logits_fn(model), stream, table, seq_len=SEQ_LEN, stride=STRIDE)
    disjoint = evaluate(logits_fn(model), stream, table, seq_len=SEQ_LEN, stride=SEQ_LEN)
    assert overlapping.tokens == disjoint.tokens and overlapping.bytes == disjoint.bytes
    assert relative(overlapping.val_loss, disjoint.val_loss) > 1e-4


class CountingModel:
    """Records which targets the evaluator asks logits for: the stream is 0, 1, 2, ... so an input id
    is its own index, and the target of a position is that index + 1. Uniform logits."""

    def __init__(self, vocab: int) -> None:
        self.vocab = vocab
        self.scored: list[int] = []

    def __call__(self, ids: torch.Tensor, last_n: int | None) -> torch.Tensor:
        positions = ids if last_n is None else ids[:, -last_n:]
        self.scored.extend((positions + 1).flatten().tolist())
        return torch.zeros(*positions.shape, self.vocab, dtype=torch.float64)


@pytest.mark.parametrize("length,seq_len,stride", [(300, 32, 7), (300, 32, 32), (20, 32, 7), (97, 16, 4)])
def test_every_target_scored_exactly_once(length, seq_len, stride):
    counter = CountingModel(vocab=length)
    table = byte_table(vocab=length)
    table.base_bytes[:] = 1
    table.is_boundary[:] = False
    table.has_leading_space[:] = False
    result = evaluate(counter, np.arange(length), table, seq_len=seq_len, stride=stride, batch_tokens=4 * seq_len)
    assert sorted(counter.scored) == list(range(1, length))
    assert result.tokens == result.bytes == length - 1
    assert result.val_loss == pytest.approx(math.log(length), rel=1e-12)  # uniform over `length` ids


def test_window_plan_pins_the_contract():
    plan = WindowPlan(num_tokens=31, seq_len=8, stride=3)  # 30 targets
    assert plan.num_windows == 9
    assert [plan.start(k) for k in (0, 1, 8)] == [0, 3, 24]
    assert [plan.length(k) for k in (0, 7, 8)] == [8, 8, 6]
    assert [plan.scored(k) for k in (0, 1, 7, 8)] == [8, 3, 3, 1]  # 8 + 7*3 + 1 = 30
    assert plan.regular_range() == (1, 8)
    assert sum(plan.scored(k) for k in range(plan.num_windows)) == 30
    assert WindowPlan(num_tokens=30, seq_len=8, stride=3).num_windows == 8  # overhang 21 = 7 strides
    assert WindowPlan(num_tokens=5, seq_len=8, stride=3).num_windows == 1
    assert WindowPlan(num_tokens=17, seq_len=8, stride=8).regular_range() == (0, 2)
    assert [WindowPlan(100, 10, 4).rank_range(r, 3) for r in range(3)] == [(0, 8), (8, 16), (16, 24)]
    with pytest.raises(ValueError):
        WindowPlan(num_tokens=100, seq_len=8, stride=9)
    with pytest.raises(ValueError):
        WindowPlan(num_tokens=1, seq_len=8, stride=4)


def test_bytes_follow_the_leading_space_rule():
    table = byte_table()
    luts = byte_luts(table, "cpu")
    spaced = int(np.flatnonzero(table.has_leading_space)[0])
    targets = torch.tensor([spaced, spaced, 1])
    previous = torch.tensor([1, 5, spaced])  # after a boundary token the space is not counted
    expected = [table.base_bytes[spaced], table.base_bytes[spaced] + (0 if table.is_boundary[5] else 1), 0]
    assert target_bytes(targets, previous, luts).tolist() == expected


def test_token_losses_are_fp32_or_better():
    logits = torch.randn(2, 3, VOCAB, dtype=torch.bfloat16)
    targets = torch.randint(0, VOCAB, (2, 3))
    losses = token_losses(logits, targets)
    assert losses.dtype == torch.float32
    reference = torch.nn.functional.cross_entropy(logits.double().reshape(-1, VOCAB), targets.reshape(-1), reduction="none")
    assert torch.allclose(losses.double().reshape(-1), reference, rtol=1e-6)
    assert token_losses(logits.double(), targets).dtype == torch.float64


def test_wrong_logits_shape_is_refused():
    stream, table = random_stream(50), byte_table()
    with pytest.raises(ValueError, match="expected"):
        evaluate(lambda ids, n: torch.zeros(ids.shape[0], ids.shape[1], VOCAB), stream, table, seq_len=8, stride=4)
    with pytest.raises(ValueError, match="cover"):
        evaluate(lambda ids, n: torch.zeros(ids.shape[0], n or ids.shape[1], 3), stream, table, seq_len=8, stride=4)


def test_benchmark_model_last_n_path_equals_full_logits():
    """bench/baseline_model.py skips the last block's queries and MLP for unscored positions; in
    float64 that must give exactly the full forward's logits, and the evaluator the naive result."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
    from baseline_model import BaselineShapedGPT, ModelShape

    shape = ModelShape(vocab_size=VOCAB, num_layers=3, model_dim=32, num_heads=4, num_kv_heads=2, seq_len=SEQ_LEN)
    model = BaselineShapedGPT(shape).double()
    ids = torch.randint(0, VOCAB, (3, SEQ_LEN))
    with torch.inference_mode():
        full = model.forward_logits(ids)
        assert torch.allclose(model.forward_logits(ids, STRIDE), full[:, -STRIDE:], rtol=0, atol=1e-12)
    stream, table = random_stream(97), byte_table()
    fast = evaluate(model.forward_logits, stream, table, seq_len=SEQ_LEN, stride=STRIDE)
    naive = evaluate_naive(model.forward_logits, stream, table, seq_len=SEQ_LEN, stride=STRIDE)
    assert relative(fast.loss_sum_nats, naive.loss_sum_nats) < 1e-9


@pytest.mark.gpu
def test_fast_path_equals_naive_on_cuda():
    """The same equality on the GPU, in float64 (no bf16 rounding), batched and gathered on the device."""
    model = TinyTransformer().cuda()
    stream, table = random_stream(1 + SEQ_LEN + 40 * STRIDE + 2), byte_table()
    fast = evaluate(logits_fn(model), stream, table, seq_len=SEQ_LEN, stride=STRIDE, device="cuda", batch_tokens=8 * SEQ_LEN)
    naive = evaluate_naive(logits_fn(model), stream, table, seq_len=SEQ_LEN, stride=STRIDE, device="cuda")
    assert (fast.tokens, fast.bytes) == (naive.tokens, naive.bytes)
    assert relative(fast.loss_sum_nats, naive.loss_sum_nats) < 1e-9
