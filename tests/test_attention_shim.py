"""The FlashAttention 3 shim (harness/reproduce/shims/flash_attn_interface.py) against FA's definition
written out in float64: masks from loops over (query, key), softmax one query row at a time."""

from __future__ import annotations

import ast
import importlib.util
import sys
from pathlib import Path

import pytest
import torch

SHIM_PATH = Path(__file__).resolve().parents[1] / "harness" / "reproduce" / "shims" / "flash_attn_interface.py"


def _load_shim():
    # By file path, as the script in a run's work dir imports it; never through the harness package.
    # Registered in sys.modules as an import would be (torch.compile looks the module up there).
    spec = importlib.util.spec_from_file_location("shim_flash_attn_interface", SHIM_PATH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


shim = _load_shim()


# --- the naive twin -----------------------------------------------------------------------------------

def reference_mask(q_len, k_len, causal, window):
    """FA's docstring: query i sees key j when i + Tk - Tq - left <= j <= i + Tk - Tq + right; causal
    means right = 0; -1 means unbounded."""
    left, right = window
    if causal:
        right = 0
    mask = torch.zeros(q_len, k_len, dtype=torch.bool)
    for i in range(q_len):
        aligned = i + k_len - q_len
        for j in range(k_len):
            mask[i, j] = (left < 0 or j >= aligned - left) and (right < 0 or j <= aligned + right)
    return mask


def reference(q, k, v, causal=False, window=(-1, -1), scale=None, softcap=0.0):
    """out (B, Tq, Hq, Dv) and lse (B, Hq, Tq) in float64, differentiable; a row with no key gets 0, -inf."""
    q, k, v = q.double(), k.double(), v.double()
    batch, q_len, q_heads, dim = q.shape
    group = q_heads // k.shape[2]
    scale = dim ** -0.5 if scale is None else scale
    mask = reference_mask(q_len, k.shape[1], causal, window)
    out_rows, lse_rows = [], []
    for b in range(batch):
        for h in range(q_heads):
            for i in range(q_len):
                keys = mask[i].nonzero().flatten()
                if len(keys) == 0:
                    out_rows.append(torch.zeros(v.shape[-1], dtype=torch.float64))
                    lse_rows.append(torch.tensor(float("-inf"), dtype=torch.float64))
                    continue
                scores = (k[b, keys, h // group] @ q[b, i, h]) * scale
                if softcap:
                    scores = softcap * torch.tanh(scores / softcap)
                out_rows.append(torch.softmax(scores, dim=0) @ v[b, keys, h // group])
                lse_rows.append(torch.logsumexp(scores, dim=0))
    out = torch.stack(out_rows).view(batch, q_heads, q_len, -1).transpose(1, 2)
    return out, torch.stack(lse_rows).view(batch, q_heads, q_len)


def reference_varlen(q, k, v, q_lens, k_lens, **options):
    """Each sequence on its own through reference(); out (total_q, Hq, Dv), lse (Hq, total_q)."""
    outs, lses, q_start, k_start = [], [], 0, 0
    for q_len, k_len in zip(q_lens, k_lens):
        if q_len:
            out, lse = reference(q[None, q_start:q_start + q_len], k[None, k_start:k_start + k_len],
                                 v[None, k_start:k_start + k_len], **options)
            outs.append(out[0])
            lses.append(lse[0])
        q_start, k_start = q_start + q_len, k_start + k_len
    return torch.cat(outs), torch.cat(lses, dim=1)


def qkv(batch, q_len, k_len, q_heads, kv_heads, dim=8, dtype=torch.float32, seed=0):
    generator = torch.Generator().manual_seed(seed)
    shapes = [(batch, q_len, q_heads, dim), (batch, k_len, kv_heads, dim), (batch, k_len, kv_heads, dim)]
    return [torch.randn(shape, generator=generator).to(dtype) for shape in shapes]


def cu_seqlens(lengths, padded_to=None):
    """Prefix sums as int32, padded with empty sequences like the records' bucketed cu_seqlens."""
    bounds = [0]
    for length in lengths:
        bounds.append(bounds[-1] + length)
    bounds += [bounds[-1]] * ((padded_to or len(bounds)) - len(bounds))
    return torch.tensor(bounds, dtype=torch.int32)


F32 = {"atol": 1e-5, "rtol": 1e-5}


# --- flash_attn_func ------------------------------------------------------------------------------------

DENSE_CASES = {
    "non-causal": dict(causal=False, heads=(4, 4), lens=(6, 6)),
    "causal": dict(causal=True, heads=(4, 4), lens=(6, 6)),
    "GQA causal": dict(causal=True, heads=(4, 2), lens=(6, 6)),
    "MQA non-causal": dict(causal=False, heads=(4, 1), lens=(6, 6)),
    "causal Tq<Tk bottom-right": dict(causal=True, heads=(4, 2), lens=(3, 7)),
    "causal Tq>Tk rows with no key": dict(causal=True, heads=(2, 2), lens=(7, 3)),
    "sliding window causal": dict(causal=True, heads=(4, 2), lens=(9, 9), window=(2, -1)),
    "window both sides": dict(causal=False, heads=(2, 2), lens=(5, 8), window=(1, 2)),
    "left window only": dict(causal=False, heads=(2, 1), lens=(6, 6), window=(2, -1)),
    "right window only": dict(causal=False, heads=(2, 1), lens=(4, 6), window=(-1, 1)),
}


@pytest.mark.parametrize("case", DENSE_CASES.values(), ids=DENSE_CASES.keys())
def test_flash_attn_func_matches_the_float64_reference(case):
    window = case.get("window", (-1, -1))
    q, k, v = qkv(2, *case["lens"], *case["heads"])
    out = shim.flash_attn_func(q, k, v, causal=case["causal"], window_size=window)
    expected, _ = reference(q, k, v, causal=case["causal"], window=window)
    assert out.shape == (2, case["lens"][0], case["heads"][0], 8) and out.dtype == torch.float32
    torch.testing.assert_close(out.double(), expected, **F32)


@pytest.mark.parametrize("q_len, k_len, rows", [
    (2, 5, [[1 / 4] * 4 + [0], [1 / 5] * 5]),
    (5, 2, [[0, 0], [0, 0], [0, 0], [1, 0], [1 / 2, 1 / 2]]),
])
def test_causal_masks_are_bottom_right_as_in_fa_docstring(q_len, k_len, rows):
    # q = 0 makes attention uniform over the keys a query sees and v = one-hot rows reads that set
    # back: each output row is the mask row of FA's docstring divided by its count, 0 for none.
    q = torch.zeros(1, q_len, 1, k_len)
    v = torch.eye(k_len)[None, :, None, :]
    out = shim.flash_attn_func(q, torch.randn(1, k_len, 1, k_len), v, causal=True)
    torch.testing.assert_close(out[0, :, 0], torch.tensor(rows), **F32)


def test_softmax_scale_is_honoured():
    q, k, v = qkv(1, 5, 5, 2, 2)
    out = shim.flash_attn_func(q, k, v, softmax_scale=0.3, causal=True)
    torch.testing.assert_close(out.double(), reference(q, k, v, causal=True, scale=0.3)[0], **F32)
    assert (out - shim.flash_attn_func(q, k, v, causal=True)).abs().max() > 1e-2


def test_softcap_caps_scores_with_tanh():
    q, k, v = qkv(1, 6, 6, 4, 2)
    q = q * 4  # scores well past the cap, where tanh bends them
    out = shim.flash_attn_func(q, k, v, causal=True, softcap=1.5)
    torch.testing.assert_close(out.double(), reference(q, k, v, causal=True, softcap=1.5)[0], **F32)
    assert (out - shim.flash_attn_func(q, k, v, causal=True)).abs().max() > 1e-1


def test_returns_out_alone_and_out_with_lse_on_request():
    # FA3 3.0.0: `out`, and `(out, softmax_lse)` only with return_attn_probs=True (records use `out`).
    q, k, v = qkv(2, 7, 3, 4, 2)
    out = shim.flash_attn_func(q, k, v, causal=True)
    assert isinstance(out, torch.Tensor)
    out_again, lse = shim.flash_attn_func(q, k, v, causal=True, return_attn_probs=True)
    expected_out, expected_lse = reference(q, k, v, causal=True)
    torch.testing.assert_close(out_again, out, **F32)
    torch.testing.assert_close(out.double(), expected_out, **F32)
    assert lse.shape == (2, 4, 7) and lse.dtype == torch.float32
    assert torch.isneginf(lse[:, :, :4]).all()  # queries 0..3 see no key when Tq - Tk = 4
    torch.testing.assert_close(lse.double(), expected_lse, **F32)
    assert shim.flash_attn_func(q.double(), k, v, return_attn_probs=True)[1].dtype == torch.float32


# The reference runs on the same rounded inputs, so what remains is about one rounding of the output.
@pytest.mark.parametrize("dtype, tolerance", [(torch.bfloat16, 2**-8), (torch.float16, 2**-11)])
def test_low_precision_inputs_return_their_dtype(dtype, tolerance):
    q, k, v = qkv(2, 8, 8, 4, 2, dtype=dtype)
    for options in ({"causal": True}, {"causal": True, "window_size": (3, -1)}, {"softcap": 2.0}):
        out = shim.flash_attn_func(q, k, v, **options)
        assert out.dtype == dtype, options
        expected, _ = reference(q, k, v, causal=options.get("causal", False),
                                window=options.get("window_size", (-1, -1)), softcap=options.get("softcap", 0))
        torch.testing.assert_close(out.double(), expected, atol=tolerance, rtol=tolerance)


def test_gradients_match_the_reference_including_rows_with_no_key():
    q, k, v = qkv(1, 6, 4, 4, 2, dtype=torch.float64)
    weights = torch.randn(1, 6, 4, 8, dtype=torch.float64)
    grads = {}
    for name, attend in (("shim", lambda *t: shim.flash_attn_func(*t, causal=True, window_size=(2, -1))),
                         ("reference", lambda *t: reference(*t, causal=True, window=(2, -1))[0])):
        leaves = [t.clone().requires_grad_() for t in (q, k, v)]
        (attend(*leaves) * weights).sum().backward()
        grads[name] = [leaf.grad for leaf in leaves]
    for shim_grad, reference_grad in zip(grads["shim"], grads["reference"]):
        assert torch.isfinite(shim_grad).all()
        torch.testing.assert_close(shim_grad, reference_grad, atol=1e-10, rtol=1e-10)


# --- flash_attn_varlen_func -----------------------------------------------------------------------------

LENGTHS = [3, 1, 5]


def packed_qkv(q_total, k_total, q_heads=4, kv_heads=2, dim=8, seed=1):
    q, k, v = qkv(1, q_total, k_total, q_heads, kv_heads, dim, seed=seed)
    return q[0], k[0], v[0]


@pytest.mark.parametrize("causal, window", [(False, (-1, -1)), (True, (-1, -1)), (True, (2, -1))])
def test_varlen_matches_each_sequence_on_its_own(causal, window):
    q, k, v = packed_qkv(9, 9)
    lengths = [3, 0, 1, 5]  # an empty sequence inside, and two more at the end as records bucket them
    cu = cu_seqlens(lengths, padded_to=7)
    out = shim.flash_attn_varlen_func(q, k, v, cu, cu, 5, 5, causal=causal, window_size=window)
    expected, _ = reference_varlen(q, k, v, lengths, lengths, causal=causal, window=window)
    assert out.shape == (9, 4, 8)
    torch.testing.assert_close(out.double(), expected, **F32)


@pytest.mark.parametrize("causal", [False, True])
def test_varlen_attention_never_crosses_a_sequence_boundary(causal):
    q, k, v = packed_qkv(9, 9)
    cu = cu_seqlens(LENGTHS)
    before = shim.flash_attn_varlen_func(q, k, v, cu, cu, 5, 5, causal=causal)
    k_changed, v_changed = k.clone(), v.clone()
    k_changed[3:4] += 5.0  # sequence 2 (rows 3:4) only
    v_changed[3:4] -= 7.0
    after = shim.flash_attn_varlen_func(q, k_changed, v_changed, cu, cu, 5, 5, causal=causal)
    assert torch.equal(after[:3], before[:3]) and torch.equal(after[4:], before[4:])
    assert not torch.allclose(after[3:4], before[3:4])


@pytest.mark.parametrize("causal, window", [(True, (-1, -1)), (True, (1, -1)), (False, (0, 1))])
def test_varlen_aligns_masks_bottom_right_per_sequence(causal, window):
    q_lens, k_lens = [2, 1, 3], [4, 1, 3]
    q, k, v = packed_qkv(sum(q_lens), sum(k_lens))
    out = shim.flash_attn_varlen_func(q, k, v, cu_seqlens(q_lens), cu_seqlens(k_lens), 3, 4, causal=causal,
                                      window_size=window)
    expected, _ = reference_varlen(q, k, v, q_lens, k_lens, causal=causal, window=window)
    torch.testing.assert_close(out.double(), expected, **F32)


def test_varlen_lse_is_heads_by_total_q():
    q, k, v = packed_qkv(9, 9)
    cu = cu_seqlens(LENGTHS)
    out, lse = shim.flash_attn_varlen_func(q, k, v, cu, cu, 5, 5, causal=True, return_attn_probs=True)
    expected_out, expected_lse = reference_varlen(q, k, v, LENGTHS, LENGTHS, causal=True)
    assert lse.shape == (4, 9) and lse.dtype == torch.float32
    torch.testing.assert_close(out.double(), expected_out, **F32)
    torch.testing.assert_close(lse.double(), expected_lse, **F32)


def test_varlen_low_precision_and_gradients():
    q, k, v = packed_qkv(9, 9)
    cu = cu_seqlens(LENGTHS)
    out = shim.flash_attn_varlen_func(q.bfloat16(), k.bfloat16(), v.bfloat16(), cu, cu, 5, 5, causal=True)
    assert out.dtype == torch.bfloat16
    expected, _ = reference_varlen(q.bfloat16(), k.bfloat16(), v.bfloat16(), LENGTHS, LENGTHS, causal=True)
    torch.testing.assert_close(out.double(), expected, atol=3e-2, rtol=3e-2)
    leaves = [t.double().requires_grad_() for t in (q, k, v)]
    shim.flash_attn_varlen_func(*leaves, cu, cu, 5, 5, causal=True).square().sum().backward()
    reference_leaves = [t.double().requires_grad_() for t in (q, k, v)]
    reference_varlen(*reference_leaves, LENGTHS, LENGTHS, causal=True)[0].square().sum().backward()
    for leaf, reference_leaf in zip(leaves, reference_leaves):
        torch.testing.assert_close(leaf.grad, reference_leaf.grad, atol=1e-10, rtol=1e-10)


# --- as records use it ----------------------------------------------------------------------------------

def test_records_calls_trace_whole_under_torch_compile():
    # Records compile with fullgraph=True: a Python branch on a tensor value would fail to trace.
    q, k, v = qkv(1, 9, 9, 4, 2)
    cu = cu_seqlens(LENGTHS, padded_to=8)

    def attention(q, k, v, cu):
        dense = shim.flash_attn_func(q, k, v, causal=True)
        packed = shim.flash_attn_varlen_func(q[0], k[0], v[0], cu_seqlens_q=cu, cu_seqlens_k=cu, max_seqlen_q=5,
                                             max_seqlen_k=5, causal=True, window_size=(-1, -1))[None]
        return dense, packed

    compiled = torch.compile(attention, backend="eager", fullgraph=True)
    for got, expected in zip(compiled(q, k, v, cu), attention(q, k, v, cu)):
        torch.testing.assert_close(got, expected, **F32)


def test_unimplemented_arguments_raise_and_performance_knobs_do_not():
    q, k, v = qkv(1, 4, 4, 2, 2)
    for options in ({"qv": q}, {"attention_chunk": 2}, {"q_descale": torch.ones(1)}, {"dropout_p": 0.1}):
        with pytest.raises(NotImplementedError, match=next(iter(options))):
            shim.flash_attn_func(q, k, v, causal=True, **options)
    with pytest.raises(NotImplementedError, match="seqused_k"):
        cu = cu_seqlens([4])
        shim.flash_attn_varlen_func(q[0], k[0], v[0], cu, cu, 4, 4, seqused_k=torch.tensor([4]))
    knobs = {"num_splits": 4, "pack_gqa": True, "deterministic": True, "sm_margin": 8}
    assert torch.equal(shim.flash_attn_func(q, k, v, causal=True, **knobs), shim.flash_attn_func(q, k, v, causal=True))


def test_shim_is_marked_and_standalone():
    assert shim.SHIM is True
    assert set(shim.__all__) == {"SHIM", "flash_attn_func", "flash_attn_varlen_func"}
    imported = set()
    for node in ast.walk(ast.parse(SHIM_PATH.read_text())):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add(node.module.split(".")[0])
    assert imported - sys.stdlib_module_names - {"torch", "__future__"} == set()
