"""bench/fused_model.py computes the baseline-shaped model's function: from the same weights its logits
are as close to the float64 model's as the plain model's in the same storage dtype, for full windows,
the last-n path, windows shorter than the model's length and row counts that no tile divides.

On the CPU the kernels run under Triton's interpreter (TRITON_INTERPRET=1, float16: the interpreter
cannot load bfloat16); on CUDA (`pytest -m gpu`) they run compiled, in bfloat16."""

from __future__ import annotations

import os
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import triton_modes

INTERPRET = not torch.cuda.is_available()


def interpreting():
    """The interpreter for the block on a CPU-only machine (tests/triton_modes.py); no other test should see it."""
    return triton_modes.interpreting(INTERPRET)


with interpreting():
    pytest.importorskip("triton", reason="the fused kernels need Triton (pip install -e .[test] installs it)")
    import triton
    import triton.language as tl

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
    from baseline_model import BaselineShapedGPT, ModelShape  # noqa: E402
    from fused_model import (CONFIGS, SMALL_MODEL_CONFIGS, SMALL_MODEL_PERSISTENT_CONFIGS,  # noqa: E402
                             SMALL_MODEL_SHAPE, AttentionConfig, FusedBaselineGPT, TileConfig, applies, persistent,
                             rope_pair_order, triton_product)

    @triton.jit
    def _loop_probe(out_ptr, n):
        for i in tl.range(tl.program_id(0), n, tl.num_programs(0)):
            tl.store(out_ptr + i, i)


def _interpreter_takes_runtime_loop_bounds() -> bool:
    """Triton 3.6's interpreter turns a run-time loop bound into a 1-element array, which numpy 2
    refuses as a range() bound (3.9's does not): the persistent kernels' tile loop needs one."""
    if not INTERPRET:
        return True
    out = torch.zeros(4, dtype=torch.int32)
    with interpreting():
        try:
            _loop_probe[(2,)](out, 4)
        except Exception:
            return False
    return out.tolist() == [0, 1, 2, 3]


RUNTIME_LOOPS = _interpreter_takes_runtime_loop_bounds()


@pytest.fixture(autouse=True)
def interpreter():
    with interpreting():
        yield


# Five blocks: two U-net sources, a decoder block that pops its predecessor's own output, one that pops
# a stored skip, and a last block without one; every head dimension and GQA ratio 2.
SMALL = ModelShape(vocab_size=96, num_layers=5, mlp_mult=2, seq_len=64, **SMALL_MODEL_SHAPE)


def randomised_model(shape: ModelShape, device: str, dtype: torch.dtype) -> BaselineShapedGPT:
    """Random values in every parameter the plain model initialises to constants (mixes, scales, gains,
    skip weights), so that each path of the fused kernels changes the result."""
    model = BaselineShapedGPT(shape, seed=3)
    generator = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if param.ndim == 2 and "weight" in name and "skip" not in name and "mix" not in name:
                continue
            param.copy_(0.5 + torch.rand(param.shape, generator=generator))
    return model.to(device=device, dtype=dtype).eval()


def relative_error(got: torch.Tensor, want: torch.Tensor) -> float:
    return float((got.double() - want.double()).norm() / want.double().norm())


WINDOWS = ((None, None), (None, 16), (-21, 5), (-21, None))  # (shorten the window by, last_n)


def errors(fused: FusedBaselineGPT, model: BaselineShapedGPT, exact: BaselineShapedGPT, ids: torch.Tensor):
    """Per window shape, (fused, plain) relative error of the logits against the float64 model."""
    out = []
    with torch.inference_mode():
        for shorten, last_n in WINDOWS:
            window = ids[:, : ids.shape[1] + (shorten or 0)]
            want = exact.forward_logits(window, last_n)
            got = fused.forward_logits(window, last_n)
            assert got.shape == want.shape and torch.isfinite(got).all()
            out.append((relative_error(got, want), relative_error(model.forward_logits(window, last_n), want)))
    return out


def setup(device: str, dtype: torch.dtype, configs, shape: ModelShape, batch: int):
    model = randomised_model(shape, device, dtype)
    exact = randomised_model(shape, device, torch.float64)
    ids = torch.randint(0, shape.vocab_size, (batch, shape.seq_len), generator=torch.Generator().manual_seed(11))
    return FusedBaselineGPT(model, configs), model, exact, ids.to(device)


def assert_as_accurate_as_the_plain_model(device, dtype, configs=None, shape: ModelShape = SMALL, batch: int = 3):
    """The fused forward is no further from the float64 model than the plain one in the same dtype
    (both round differently, so neither is exact; 1.5x the plain model's error is the bound)."""
    for (shorten, last_n), (fused_error, plain_error) in zip(WINDOWS, errors(*setup(device, dtype, configs, shape, batch))):
        assert fused_error < 1.5 * plain_error, f"window {shorten}, last_n {last_n}: {fused_error:.2e} vs {plain_error:.2e}"


def test_rope_pair_order_interleaves_the_two_halves():
    assert rope_pair_order(8).tolist() == [0, 4, 1, 5, 2, 6, 3, 7]


@pytest.mark.skipif(torch.cuda.is_available(), reason="the CUDA variant below runs the kernels compiled")
@pytest.mark.parametrize("configs", [
    SMALL_MODEL_CONFIGS,
    pytest.param(SMALL_MODEL_PERSISTENT_CONFIGS, marks=pytest.mark.skipif(
        not RUNTIME_LOOPS, reason="this Triton's interpreter cannot run loops with run-time bounds (3.6 with numpy 2; "
                                  "3.9 can); kernel_report still compiles the persistent kernels")),
    {name: replace(config, prefetch="early") for name, config in SMALL_MODEL_CONFIGS.items()},
], ids=["tile-per-program", "persistent", "early-epilogue-loads"])
def test_fused_forward_is_as_accurate_as_the_plain_model_in_the_interpreter(configs):
    """Both launch modes: a program per tile, and few programs each walking several tiles; and the
    epilogue's operands loaded before the product."""
    assert_as_accurate_as_the_plain_model("cpu", torch.float16, configs=configs)


@pytest.mark.skipif(torch.cuda.is_available(), reason="the CUDA variant below runs the kernels compiled")
@pytest.mark.parametrize("sabotage", ["mlp_scale", "skip", "q_gain", "mix"])
def test_a_changed_parameter_is_seen(sabotage):
    """The bound is sharp: one block's parameter changed by 20 % breaks it."""
    fused, model, exact, ids = setup("cpu", torch.float16, SMALL_MODEL_CONFIGS, SMALL, batch=2)
    if sabotage == "skip":
        fused.skip_weights[1] = fused.skip_weights[1] * 1.2
    else:
        block = fused.blocks[{"mlp_scale": 2, "q_gain": 1, "mix": 3}[sabotage]]
        block[sabotage] = block[sabotage] * 1.2
    assert any(f >= 1.5 * p for f, p in errors(fused, model, exact, ids))


def _first_block_qkv_both_ways(device: str, dtype: torch.dtype, configs, shape: ModelShape, batch: int):
    """Block 0's (q, kv) through the table (first_qkv_kernel) and through the product over every row."""
    model = randomised_model(shape, device, dtype)
    fused = FusedBaselineGPT(model, configs)
    ids = torch.randint(0, shape.vocab_size, (batch, shape.seq_len), generator=torch.Generator().manual_seed(4))
    ids = ids.to(device)
    with torch.inference_mode():
        from_table = fused._first_qkv(ids, shape.seq_len)
        _, x, ss = fused._embed(ids, fused.blocks[0]["mix"])
        params = fused.blocks[0]
        from_product = fused._qkv(x, ss, params["qkv"], fused.q_dim, fused.kv_dim, params["q_gain"], shape.seq_len, 0)
    return from_table, from_product


def assert_same_to_one_rounding(got: torch.Tensor, want: torch.Tensor) -> None:
    """The table path and the product round at the same places; only the per-head sum of squares may be
    added in another order, moving a value by one unit in the last place now and then."""
    ulp = 2.0 ** -(7 if got.dtype == torch.bfloat16 else 10)  # of a value in [1, 2)
    got, want = got.float(), want.float()
    assert ((got - want).abs() <= ulp * want.abs().clamp_min(2 ** -14)).all()
    assert (got != want).float().mean() < 0.01


@pytest.mark.skipif(torch.cuda.is_available(), reason="the CUDA variant below runs the kernels compiled")
def test_block_zero_from_the_table_equals_its_product_in_the_interpreter():
    """Block 0's input is a function of the token alone, so its q, k, v by token id from a table of every
    id's product are the product's values at every row of every window (RoPE at the row's position)."""
    (q_table, kv_table), (q, kv) = _first_block_qkv_both_ways("cpu", torch.float16, SMALL_MODEL_CONFIGS, SMALL, 2)
    assert_same_to_one_rounding(q_table, q)
    assert_same_to_one_rounding(kv_table, kv)


@pytest.mark.gpu
def test_block_zero_from_the_table_equals_its_product_on_cuda():
    (q_table, kv_table), (q, kv) = _first_block_qkv_both_ways("cuda", torch.bfloat16, None, ModelShape(), 4)
    assert_same_to_one_rounding(q_table, q)
    assert_same_to_one_rounding(kv_table, kv)


@pytest.mark.skipif(torch.cuda.is_available(), reason="the interpreter runs on the CPU only")
def test_fused_forward_without_the_block_zero_table_is_as_accurate_too():
    model = randomised_model(SMALL, "cpu", torch.float16)
    exact = randomised_model(SMALL, "cpu", torch.float64)
    ids = torch.randint(0, SMALL.vocab_size, (2, SMALL.seq_len), generator=torch.Generator().manual_seed(11))
    fused = FusedBaselineGPT(model, SMALL_MODEL_CONFIGS, first_block_table=False)
    assert fused.first_qkv_table is None
    for (shorten, last_n), (fused_error, plain_error) in zip(WINDOWS, errors(fused, model, exact, ids)):
        assert fused_error < 1.5 * plain_error, f"window {shorten}, last_n {last_n}"


def consecutive_windows(shape: ModelShape, stride: int, windows: int, seed: int = 13) -> torch.Tensor:
    """`windows` windows of a random stream, `stride` apart: an evaluator batch."""
    generator = torch.Generator().manual_seed(seed)
    stream = torch.randint(0, shape.vocab_size, ((windows - 1) * stride + shape.seq_len,), generator=generator)
    return stream.unfold(0, shape.seq_len, stride).contiguous()


def per_row_error(got: torch.Tensor, want: torch.Tensor) -> torch.Tensor:
    """Each row's relative error (2-norm)."""
    return (got.float() - want.float()).norm(dim=1) / want.float().norm(dim=1)


def _first_attention_both_ways(device: str, dtype: torch.dtype, configs, shape: ModelShape, stride: int, windows: int):
    """Block 0's attention of consecutive windows: shared across them (first_attention_kernel) and per window
    (first_qkv_kernel, then SDPA per window), with the two models and the windows."""
    model = randomised_model(shape, device, dtype)
    shared = FusedBaselineGPT(model, configs, window_stride=stride)
    per_window = FusedBaselineGPT(model, configs, window_stride=None)
    ids = consecutive_windows(shape, stride, windows).to(device)
    with torch.inference_mode():
        assert shared.takes_first_attention(shape.seq_len) and not per_window.takes_first_attention(shape.seq_len)
        assert bool(shared.consecutive_windows(ids))
        got = shared._first_attention(ids)
        want = per_window._first_attention_per_window(ids)
    return got, want, (shared, per_window, model, ids)


def assert_shared_first_attention_is_the_per_window_one(device, dtype, configs, shape, stride, windows):
    """The same values to the storage dtype's rounding (the scores of windows other than a block's first are
    rotated at other positions, the softmax is summed in another order), for every window and position;
    and the whole forward as close to the float64 model as the plain model."""
    got, want, (shared, per_window, model, ids) = _first_attention_both_ways(device, dtype, configs, shape, stride,
                                                                            windows)
    unit = 2.0 ** -(7 if dtype == torch.bfloat16 else 10)
    per_row = per_row_error(got, want)
    assert per_row.max() < 2 * unit, f"{per_row.max():.2e}"
    exact = randomised_model(shape, device, torch.float64)
    with torch.inference_mode():
        for last_n in (None, stride):
            want_logits = exact.forward_logits(ids, last_n)
            shared_error = relative_error(shared.forward_logits(ids, last_n), want_logits)
            plain_error = relative_error(model.forward_logits(ids, last_n), want_logits)
            assert shared_error < 1.5 * plain_error, f"last_n {last_n}: {shared_error:.2e} vs {plain_error:.2e}"


@pytest.mark.skipif(torch.cuda.is_available(), reason="the CUDA variant below runs the kernels compiled")
@pytest.mark.parametrize("windows", [1, 6])
def test_block_zero_attention_shared_across_windows_is_the_per_window_one_in_the_interpreter(windows):
    """One window, and more windows than a window has strides (every case of where a block's first window
    lies: before the batch, inside it)."""
    assert_shared_first_attention_is_the_per_window_one("cpu", torch.float16, SMALL_MODEL_CONFIGS, SMALL, 16, windows)


@pytest.mark.gpu
def test_block_zero_attention_shared_across_windows_is_the_per_window_one_on_cuda():
    assert_shared_first_attention_is_the_per_window_one("cuda", torch.bfloat16, None, ModelShape(), 64, 20)


@pytest.mark.skipif(torch.cuda.is_available(), reason="the interpreter runs on the CPU only")
def test_a_swapped_window_in_the_shared_attention_is_seen():
    """The bound above is sharp: window 2's rows written as window 3's fail it."""
    got, want, _ = _first_attention_both_ways("cpu", torch.float16, SMALL_MODEL_CONFIGS, SMALL, 16, 6)
    rows = SMALL.seq_len
    swapped = got.clone()
    swapped[2 * rows : 3 * rows], swapped[3 * rows : 4 * rows] = got[3 * rows : 4 * rows], got[2 * rows : 3 * rows]
    per_row = per_row_error(swapped, want)
    assert per_row.max() > 2 * 2.0 ** -10


@pytest.mark.skipif(torch.cuda.is_available(), reason="the interpreter runs on the CPU only")
@pytest.mark.parametrize("rows", ["shuffled", "one changed token", "stride too short"])
def test_rows_that_are_not_consecutive_windows_get_attention_per_window(rows):
    """Only rows that are consecutive windows `window_stride` apart share block 0's attention (found on the
    device); any other batch gets the kernel's per-window walk: each window's own keys, the per-window
    values to rounding (a window moved by shared keys would be off by far more, see the swap test)."""
    model = randomised_model(SMALL, "cpu", torch.float16)
    shared = FusedBaselineGPT(model, SMALL_MODEL_CONFIGS, window_stride=16)
    per_window = FusedBaselineGPT(model, SMALL_MODEL_CONFIGS, window_stride=None)
    ids = consecutive_windows(SMALL, 16, 4)
    if rows == "shuffled":
        ids = ids[[0, 2, 1, 3]]
    elif rows == "one changed token":
        ids[3, 5] = (ids[3, 5] + 1) % SMALL.vocab_size
    else:
        ids = consecutive_windows(SMALL, 32, 4)
    assert not bool(shared.consecutive_windows(ids))
    with torch.inference_mode():
        got = shared._first_attention(ids)
        want = per_window._first_attention_per_window(ids)
    per_row = per_row_error(got, want)
    assert per_row.max() < 2 * 2.0 ** -10, f"{per_row.max():.2e}"


def test_window_strides_the_shared_attention_cannot_take_are_refused():
    model = randomised_model(SMALL, "cpu", torch.float16)
    for stride in (24, 8):
        with pytest.raises(ValueError, match="power-of-two window stride of at least 16"):
            FusedBaselineGPT(model, SMALL_MODEL_CONFIGS, window_stride=stride)
    # windows of no whole number of strides, or of one stride: cuDNN's attention per window
    fused = FusedBaselineGPT(model, SMALL_MODEL_CONFIGS, window_stride=16)
    assert fused.takes_first_attention(64) and not fused.takes_first_attention(40)
    assert not fused.takes_first_attention(16)


# attention_kernel's tiles for the small model (seq_len 64): query heads stacked or not, key blocks smaller
# and larger than the query blocks
SMALL_ATTENTION_TILES = [AttentionConfig(block_q=32, block_k=16, stack=2, num_warps=4, full_windows=True),
                         AttentionConfig(block_q=16, block_k=32, stack=1, num_warps=4, full_windows=True),
                         AttentionConfig(block_q=32, block_k=16, stack=2, num_warps=4, full_windows=True, tma=True)]


def _attention_both_ways(device: str, dtype: torch.dtype, shape: ModelShape, tiles: AttentionConfig, batch: int,
                         last_n: int, mask_diagonal: int = 0):
    """attention_kernel's output for random q, k, v, and SDPA's in float64 from the same values (with the
    causal mask moved by mask_diagonal: a wrong mask, for the sharpness test)."""
    model = randomised_model(shape, device, dtype)
    fused = FusedBaselineGPT(model, SMALL_MODEL_CONFIGS if device == "cpu" else None, attention=tiles)
    length = shape.seq_len
    generator = torch.Generator().manual_seed(17)
    q = torch.randn(batch * last_n, fused.q_dim, generator=generator).to(device=device, dtype=dtype)
    kv = torch.randn(batch * length, 2 * fused.kv_dim, generator=generator).to(device=device, dtype=dtype)
    assert fused.attention_tiles(length, last_n) is not None
    with torch.inference_mode():
        got = fused._attention(q, kv, batch, length, last_n)
        if mask_diagonal:
            heads, kv_heads, head_dim = shape.num_heads, shape.num_kv_heads, shape.head_dim
            q4 = q.double().view(batch, last_n, heads, head_dim).transpose(1, 2)
            k4, v4 = (kv.double()[:, i * fused.kv_dim : (i + 1) * fused.kv_dim].view(batch, length, kv_heads, head_dim)
                      .transpose(1, 2) for i in (0, 1))
            visible = torch.ones(last_n, length, dtype=torch.bool, device=device).tril(
                diagonal=length - last_n + mask_diagonal)
            want = F.scaled_dot_product_attention(q4, k4, v4, attn_mask=visible, enable_gqa=True)
            want = want.transpose(1, 2).reshape(batch * last_n, heads * head_dim)
        else:
            want = fused._attention_by_sdpa(q.double(), kv.double(), batch, length, last_n)
    return got, want


@pytest.mark.skipif(torch.cuda.is_available(), reason="the CUDA variant below runs the kernel compiled")
@pytest.mark.parametrize("tiles", SMALL_ATTENTION_TILES, ids=["stacked", "one-head", "stacked-tma"])
@pytest.mark.parametrize("last_n", [64, 16])
def test_attention_kernel_is_sdpa_to_rounding_in_the_interpreter(tiles, last_n):
    """Every query of the window, and the last n only (the last block's scored queries): each output row
    within 2 units of the storage dtype's rounding of SDPA's float64 value from the same q, k, v."""
    got, want = _attention_both_ways("cpu", torch.float16, SMALL, tiles, 3, last_n)
    assert per_row_error(got, want).max() < 2 * 2.0 ** -10


@pytest.mark.gpu
@pytest.mark.parametrize("last_n", [1024, 64])
@pytest.mark.parametrize("tma", [False, True])
def test_attention_kernel_is_sdpa_to_rounding_on_cuda(last_n, tma):
    tiles = replace(AttentionConfig(), full_windows=True, tma=tma)
    got, want = _attention_both_ways("cuda", torch.bfloat16, ModelShape(), tiles, 8, last_n)
    assert per_row_error(got, want).max() < 2 * 2.0 ** -7


@pytest.mark.skipif(torch.cuda.is_available(), reason="the interpreter runs on the CPU only")
@pytest.mark.parametrize("mask_diagonal", [1, -1])
def test_a_causal_mask_off_by_one_key_is_seen(mask_diagonal):
    """The bound above is sharp: against attention that sees one key more (or less) than the causal mask
    lets it, the kernel's rows fail it."""
    got, want = _attention_both_ways("cpu", torch.float16, SMALL, SMALL_ATTENTION_TILES[0], 2, 64, mask_diagonal)
    want = torch.nan_to_num(want)  # the first query sees no key with the mask moved back: SDPA gives nan
    assert per_row_error(got, want).max() > 2 * 2.0 ** -10


@pytest.mark.skipif(torch.cuda.is_available(), reason="the CUDA variant below runs the kernels compiled")
@pytest.mark.parametrize("full_windows", [True, False])
def test_fused_forward_with_the_attention_kernel_is_as_accurate_as_the_plain_model_in_the_interpreter(full_windows):
    model = randomised_model(SMALL, "cpu", torch.float16)
    exact = randomised_model(SMALL, "cpu", torch.float64)
    ids = consecutive_windows(SMALL, 16, 3)
    tiles = replace(SMALL_ATTENTION_TILES[0], full_windows=full_windows)
    fused = FusedBaselineGPT(model, SMALL_MODEL_CONFIGS, attention=tiles)
    calls = []
    original = fused._attention_by_kernel
    fused._attention_by_kernel = lambda *args: calls.append(args[2:5]) or original(*args)
    for (shorten, last_n), (fused_error, plain_error) in zip(WINDOWS, errors(fused, model, exact, ids)):
        assert fused_error < 1.5 * plain_error, f"window {shorten}, last_n {last_n}: {fused_error:.2e} vs {plain_error:.2e}"
    # full_windows: every block of whole windows through the kernel (block 0 per window too: windows of one
    # default stride share nothing), the last one for every query, then for the last 16; else the last
    # block's 16 queries only. Windows of 43 tokens (no whole number of key blocks) through SDPA.
    assert calls == ([(3, 64, 64)] * 5 + [(3, 64, 64)] * 4 + [(3, 64, 16)] if full_windows else [(3, 64, 16)])


@pytest.mark.gpu
def test_fused_forward_with_the_attention_kernel_is_as_accurate_as_the_plain_model_on_cuda():
    model = randomised_model(ModelShape(), "cuda", torch.bfloat16)
    exact = randomised_model(ModelShape(), "cuda", torch.float64)
    ids = consecutive_windows(ModelShape(), 64, 4).cuda()
    fused = FusedBaselineGPT(model, attention=replace(AttentionConfig(), full_windows=True))
    for (shorten, last_n), (fused_error, plain_error) in zip(WINDOWS, errors(fused, model, exact, ids)):
        assert fused_error < 1.5 * plain_error, f"window {shorten}, last_n {last_n}: {fused_error:.2e} vs {plain_error:.2e}"


def test_attention_tiles_the_kernel_cannot_take_are_refused():
    model = randomised_model(SMALL, "cpu", torch.float16)
    with pytest.raises(ValueError, match="a KV head has 2"):
        FusedBaselineGPT(model, SMALL_MODEL_CONFIGS, attention=AttentionConfig(stack=4))
    for bad in (dict(block_q=48), dict(block_k=8), dict(stack=3)):
        with pytest.raises(ValueError, match="attention"):
            AttentionConfig(**bad)
    fused = FusedBaselineGPT(model, SMALL_MODEL_CONFIGS, attention=AttentionConfig(32, 32, full_windows=True))
    assert fused.attention_tiles(64, 64).block_q == 32 and fused.attention_tiles(64, 16).block_q == 16
    assert fused.attention_tiles(48, 16) is None  # keys of no whole number of blocks: SDPA
    assert fused.attention_tiles(64, 24) is None  # queries of no power-of-two block
    default = FusedBaselineGPT(model, SMALL_MODEL_CONFIGS)  # the last block's queries only
    assert default.attention_tiles(64, 64) is None and default.attention_tiles(64, 16).block_q == 16
    assert FusedBaselineGPT(model, SMALL_MODEL_CONFIGS, attention=None).attention_tiles(64, 16) is None  # SDPA
    q = torch.zeros(16, 2 * fused.q_dim, dtype=torch.float16)
    kv = torch.zeros(64, 2 * fused.kv_dim, dtype=torch.float16)
    with pytest.raises(ValueError, match="dense row-major"):  # a column slice: its rows are not q_dim apart
        fused._attention(q[:, : fused.q_dim], kv, 1, 64, 16)


def test_qkv_tiles_must_not_straddle_q_k_and_v():
    model = randomised_model(SMALL, "cpu", torch.float16)
    fused = FusedBaselineGPT(model, dict(SMALL_MODEL_CONFIGS, qkv=TileConfig(block_m=32, block_n=128, block_k=32)))
    with pytest.raises(ValueError, match="straddle"):
        fused.forward_logits(torch.zeros(1, SMALL.seq_len, dtype=torch.long), None)


def test_tile_configurations_a_kernel_cannot_take_are_not_tuned():
    assert applies("residual", TileConfig(programs_per_sm=1)) and not applies("qkv", TileConfig(programs_per_sm=1))
    # the residual kernel's sums of squares come in chunks of 128 columns
    assert applies("relu2", TileConfig(block_n=64)) and not applies("residual", TileConfig(block_n=64))
    # only the residual kernel has tiles to prefetch into L2
    assert applies("residual", TileConfig(prefetch="l2")) and not applies("qkv", TileConfig(prefetch="l2"))
    with pytest.raises(ValueError, match="prefetch must be one of"):
        applies("qkv", TileConfig(prefetch="yes"))


def test_the_bare_product_kernel_computes_a_times_w_transposed():
    generator = torch.Generator().manual_seed(5)
    a = torch.randn(96, 64, generator=generator).half()
    w = torch.randn(128, 64, generator=generator).half()
    got = triton_product(a, w, TileConfig(block_m=32, block_n=64, block_k=32, num_warps=4, num_stages=2))
    assert relative_error(got, a.double() @ w.double().T) < 1e-3


@pytest.mark.gpu
@pytest.mark.parametrize("tiles, programs_per_sm, prefetch", [
    ("defaults", 0, "none"), ("defaults", 0, "early"), ("defaults", 0, "l2"),
    ("128x128", 0, "none"), ("128x128", 1, "none"), ("128x128", 1, "l2")])
def test_fused_forward_is_as_accurate_as_the_plain_model_on_cuda(tiles, programs_per_sm, prefetch):
    """The default tiles and square ones, every launch mode and way of fetching the epilogue's operands,
    compiled (the L2 prefetch is inline assembly, which only compiled code runs)."""
    base = CONFIGS if tiles == "defaults" else dict.fromkeys(CONFIGS, TileConfig())
    if programs_per_sm:  # the defaults' own launch modes otherwise
        base = persistent(base, programs_per_sm)
    configs = {name: replace(config, prefetch=prefetch if name == "residual" or prefetch != "l2" else "none")
               for name, config in base.items()}
    assert_as_accurate_as_the_plain_model("cuda", torch.bfloat16, configs=configs, shape=ModelShape(), batch=4)


@pytest.mark.gpu
@pytest.mark.skipif(not (torch.cuda.is_available() and torch.cuda.get_device_capability()[0] == 9),
                    reason="bench/ws_gemm.py's Gluon kernels need a Hopper GPU")
def test_fused_forward_on_the_gluon_products_is_as_accurate_as_the_plain_model_on_cuda():
    """With the qkv, residual and relu² kernels replaced by bench/ws_gemm.py's warp-specialised products:
    every window shape (full, last-n, shorter than the model's) as close to the float64 model as the
    plain model in bf16."""
    import ws_gemm

    fused, model, exact, ids = setup("cuda", torch.bfloat16, None, ModelShape(), batch=4)
    gluon = FusedBaselineGPT(model, gluon_configs=ws_gemm.CONFIGS)
    for (shorten, last_n), (gluon_error, plain_error) in zip(WINDOWS, errors(gluon, model, exact, ids)):
        assert gluon_error < 1.5 * plain_error, f"window {shorten}, last_n {last_n}: {gluon_error:.2e} vs {plain_error:.2e}"


@pytest.mark.gpu
@pytest.mark.skipif(not (torch.cuda.is_available() and torch.cuda.get_device_capability()[0] == 9),
                    reason="bench/ws_gemm.py's Gluon kernels need a Hopper GPU")
@pytest.mark.parametrize("operands", ["prefetch", "gather", "both"])
def test_the_gluon_residual_operand_options_change_no_bit_of_the_logits(operands):
    """An L2 prefetch of the residual epilogue's tiles, and x0 rows read from the table of every id's x0
    by the batch's token ids: where the operands come from, not what they are."""
    import ws_gemm

    model = randomised_model(ModelShape(), "cuda", torch.bfloat16)
    base = FusedBaselineGPT(model, gluon_configs=ws_gemm.configs_with("base"))
    other = FusedBaselineGPT(model, gluon_configs=ws_gemm.configs_with(operands))
    ids = torch.randint(0, model.vocab_size, (3, model.eval_seq_len), generator=torch.Generator().manual_seed(9)).cuda()
    with torch.inference_mode():
        for last_n in (None, 64):
            assert torch.equal(other.forward_logits(ids, last_n), base.forward_logits(ids, last_n))


@pytest.mark.gpu
@pytest.mark.parametrize("products", ["triton", "gluon"])
def test_fused_forward_replayed_from_a_cuda_graph_equals_the_plain_call(products):
    """harness/cuda_graphs.py captures the fused forward (Triton or Gluon launches with TMA descriptors,
    cuDNN attention, the last block's mask, block 0's attention deciding on the device whether to share)
    once: replays give the plain call's logits bit for bit, for new inputs each time, consecutive windows
    and unrelated rows in turn."""
    from harness.cuda_graphs import GraphedLogits

    if products == "gluon" and torch.cuda.get_device_capability()[0] != 9:
        pytest.skip("bench/ws_gemm.py's Gluon kernels need a Hopper GPU")
    model = randomised_model(ModelShape(), "cuda", torch.bfloat16)
    gluon_configs = None
    if products == "gluon":
        import ws_gemm

        gluon_configs = ws_gemm.CONFIGS
    fused = FusedBaselineGPT(model, gluon_configs=gluon_configs)
    graphed = GraphedLogits(fused.forward_logits, "cuda")
    generator = torch.Generator().manual_seed(5)
    with torch.inference_mode():
        for turn in range(4):
            ids = torch.randint(0, model.vocab_size, (4, model.eval_seq_len), generator=generator).cuda()
            if turn % 2:
                ids = consecutive_windows(model.shape, 64, 4, seed=turn).cuda()
            want = fused.forward_logits(ids, 64)
            assert torch.equal(graphed(ids, 64), want)
    assert graphed.captures == 1


@pytest.mark.skipif(torch.cuda.is_available(), reason="the interpreter runs on the CPU only")
@pytest.mark.parametrize("window_stride", [16, None])
def test_evaluator_scores_the_fused_model_like_the_plain_one(window_stride):
    """Through harness.evaluator.evaluate (batched regular windows with last_n = stride, a first window
    scoring everything, a shorter final one), the fused and the plain model give the same val_loss to
    rounding, and the same token and byte counts; with block 0's attention shared across each batch's
    windows (the evaluator's batches are consecutive windows: every batch of more than one shares) and
    without."""
    from harness.evaluator import evaluate
    from evaluator_models import byte_table, random_stream

    model = randomised_model(SMALL, "cpu", torch.float16)
    fused = FusedBaselineGPT(model, SMALL_MODEL_CONFIGS, window_stride=window_stride)
    calls = []  # per forward through first_attention_kernel: (windows, length, consecutive?)
    checked = fused.consecutive_windows
    fused.consecutive_windows = lambda ids: calls.append((*ids.shape, bool(checked(ids)))) or checked(ids)
    stream, table = random_stream(1 + SMALL.seq_len + 9 * 16 + 5, vocab=SMALL.vocab_size), byte_table(SMALL.vocab_size)
    options = dict(seq_len=SMALL.seq_len, stride=16, batch_tokens=4 * SMALL.seq_len)
    plain = evaluate(model.forward_logits, stream, table, **options)
    got = evaluate(fused.forward_logits, stream, table, **options)
    assert (got.tokens, got.bytes, got.windows) == (plain.tokens, plain.bytes, plain.windows)
    assert abs(got.val_loss - plain.val_loss) / plain.val_loss < 2e-3
    # The first window alone (it scores everything), 9 regular ones in batches of 4, 4 and 1 (consecutive
    # windows: shared), the shorter last one alone (no whole number of strides: cuDNN's attention).
    assert calls == ([(1, 64, True), (4, 64, True), (4, 64, True), (1, 64, True)] if window_stride else [])


def test_kernels_compile_for_hopper_with_matrix_instructions_and_no_spills(tmp_path):
    """bench/kernel_report.py compiles every kernel the forward launches for sm_90a with Triton's own
    toolchain (no GPU needed): each compiles, no thread spills to local memory, every product runs on
    HGMMA fed by bulk tensor copies, and all the forward's variants are there."""
    import json
    import subprocess

    report_path = tmp_path / "kernels.json"
    env = dict(os.environ, TRITON_CACHE_DIR=str(tmp_path / "triton-cache"))
    env.pop("TRITON_INTERPRET", None)
    env["TRITON_CACHE_DIR"] = str(tmp_path / "triton-cache")
    script = Path(__file__).resolve().parents[1] / "bench" / "kernel_report.py"
    done = subprocess.run([sys.executable, str(script), "--json", str(report_path)], capture_output=True, text=True,
                          env=env, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    kernels = json.loads(report_path.read_text())["kernels"]
    assert all(not k["error"] and k["spill_bytes"] == 0 for k in kernels)
    products = [k for k in kernels if k["kernel"] in ("qkv_kernel", "residual_kernel", "relu2_kernel")]
    assert products and all(k["hgmma"] > 0 and k["tma_loads"] > 0 for k in products)
    of = lambda name, *keys: {tuple(k["constexprs"][key] for key in keys) for k in kernels if k["kernel"] == name}
    # Block 0's table (every column unrotated) and its gather; full blocks; the last block's keys/values for
    # every position and queries for the scored ones.
    assert of("first_qkv_kernel", "Q_COLS", "K_COLS") == {("512", "256")}
    assert of("first_attention_kernel", "GROUP", "STRIDE", "WINDOW_BLOCKS") == {("2", "64", "16")}
    assert of("qkv_kernel", "Q_COLS", "K_COLS") == {("0", "0"), ("512", "256"), ("0", "256"), ("512", "0")}
    # attention_kernel: the last block's 64 scored queries (default), and full windows of 1024 (every block)
    assert of("attention_kernel", "QUERIES", "BLOCK_Q", "STACK") == {("64", "64", "2"), ("1024", "64", "2")}
    # No skip, a stored skip, the block's own output as the skip; a U-net source stored on the side.
    assert {("0",), ("1",), ("2",)} == of("residual_kernel", "SKIP")
    assert ("True", "0") in of("residual_kernel", "STORE_EXTRA", "SKIP")


@pytest.mark.skipif(torch.cuda.is_available(), reason="the interpreter runs on the CPU only")
def test_throughput_bench_runs_the_fused_model(tmp_path):
    """bench/eval_throughput.py --model fused --also-plain --also-per-window on the CPU (interpreter, fp32, tiny model):
    the JSON holds both paths' times and their agreement, which in fp32 is far below bf16 rounding."""
    import json
    import subprocess

    repo = Path(__file__).resolve().parents[1]
    env = dict(os.environ, TRITON_INTERPRET="1", PYTHONPATH=str(repo))
    done = subprocess.run(
        [sys.executable, str(repo / "bench" / "eval_throughput.py"), "--small", "--model", "fused", "--also-plain",
         "--also-per-window",
         "--seq-len", "64", "--stride", "16", "--tokens", "700", "--batch-windows", "4", "--repeats", "1",
         "--out-dir", str(tmp_path)], capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (result_file,) = tmp_path.glob("eval_throughput_*_fused_model.json")
    result = json.loads(result_file.read_text())
    assert result["model_source"] == "fused" and result["fused_tile_configs"]["qkv"]["block_n"] == 64
    assert result["plain_model_seconds_per_split"] > 0 and result["seconds_per_split"] > 0
    assert result["max_rel_diff_vs_plain_model"] < 1e-6
    # block 0's attention shared across each batch's windows (stride 16), and per window beside it
    assert result["first_attention"] == "shared across each batch's windows"
    assert result["per_window_first_attention_seconds_per_split"] > 0
    assert result["max_rel_diff_vs_per_window_first_attention"] < 1e-6
    assert result["max_rel_diff"] < 1e-6  # against the naive loop over the plain model


def test_shapes_the_kernels_cannot_take_are_refused():
    with pytest.raises(ValueError, match="power-of-two width"):
        FusedBaselineGPT(BaselineShapedGPT(ModelShape(model_dim=384, num_heads=6, num_kv_heads=3, num_layers=1)))
    fused = FusedBaselineGPT(randomised_model(SMALL, "cpu", torch.float16), SMALL_MODEL_CONFIGS)
    with pytest.raises(ValueError, match="last_n"):
        fused.forward_logits(torch.zeros(1, 8, dtype=torch.long), 9)
    with pytest.raises(ValueError, match="exceed"):
        fused.forward_logits(torch.zeros(1, SMALL.seq_len + 1, dtype=torch.long), None)
