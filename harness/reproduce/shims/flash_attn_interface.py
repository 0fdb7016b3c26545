"""Stand-in for FlashAttention 3's `flash_attn_interface`, computed with PyTorch SDPA.

Many records' train_gpt.py do `from flash_attn_interface import flash_attn_func` (and, from
2026-04-10_VarLenAttn on, `flash_attn_varlen_func`): FA3's Hopper-only kernels, which most machines
cannot install. `harness verify --attention-shim` copies this file into the run's work dir, where the
script imports it instead. The math is FA3's (same masks, same outputs up to rounding); the speed is
not, so a verdict from a shimmed run says so and its timings are not representative.

It mirrors hopper/flash_attn_interface.py of flash_attn_3 3.0.0 (Dao-AILab/flash-attention), the
wheel the records install:

    flash_attn_func(q, k, v, softmax_scale=None, causal=False, qv=None, q_descale=None,
                    k_descale=None, v_descale=None, window_size=(-1, -1), attention_chunk=0,
                    softcap=0.0, num_splits=1, pack_gqa=None, deterministic=False, sm_margin=0,
                    return_attn_probs=False)
    flash_attn_varlen_func(q, k, v, cu_seqlens_q, cu_seqlens_k, max_seqlen_q, max_seqlen_k,
                           seqused_q=None, seqused_k=None, softmax_scale=None, causal=False,
                           ...the rest as above)

Return convention: `out` alone, or `(out, softmax_lse)` when return_attn_probs=True. FA3 returned
`(out, softmax_lse)` always until commit ed209409 (2025-07-11, "[FA3] Don't return lse") and gained
return_attn_probs in 203b9b3d (2025-08-29); 3.0.0 (2026-02-05) has both. Every record uses the
result as a tensor: `y = flash_attn_3_func(q, k, v, causal=True)` then `y.reshape(...)`, and
`flash_attn_varlen_func(...)[None]`.

Semantics kept: q (B, Tq, Hq, D), k and v (B, Tk, Hkv, D) with Hq a multiple of Hkv, query head h
reading kv head h // (Hq // Hkv); causal masks aligned to the bottom right (query i sees keys
j <= i + Tk - Tq); window_size=(left, right) keeps keys with -left <= j - (i + Tk - Tq) <= right, -1
meaning unbounded, and causal sets right to 0; a query that sees no key gets output 0 and lse -inf;
with softcap the score is softcap * tanh(scale * q.k / softcap); softmax_lse is float32, (B, Hq, Tq)
or, for varlen, (Hq, total_q). Varlen has FA3's precondition: cu_seqlens_q[-1] == total_q and no
sequence longer than max_seqlen_q (likewise for k). Performance knobs (num_splits, pack_gqa,
deterministic, sm_margin) are accepted and ignored; arguments that would change the math but are not
implemented (qv, FP8 descales, attention_chunk, seqused_*) raise NotImplementedError.

Standalone on purpose: it runs inside the submission's process, so it imports torch and the standard
library only, never harness. It has no Python branch on tensor values, so records that compile their
model with torch.compile(fullgraph=True) still trace.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["SHIM", "flash_attn_func", "flash_attn_varlen_func"]

# Tells the harness and tests that `flash_attn_interface` is this file, not the real package.
SHIM = True

_SDPA_HAS_GQA = tuple(int(part) for part in torch.__version__.split(".")[:2]) >= (2, 5)

# FA3 arguments (and FA2's dropout_p, alibi_slopes) that change the result and that no record uses:
# refused when set, rather than silently computing something else.
_UNIMPLEMENTED_DEFAULTS = {
    "qv": None, "q_descale": None, "k_descale": None, "v_descale": None, "attention_chunk": 0,
    "seqused_q": None, "seqused_k": None, "dropout_p": 0.0, "alibi_slopes": None,
}


def flash_attn_func(q, k, v, softmax_scale=None, causal=False, qv=None, q_descale=None, k_descale=None,
                    v_descale=None, window_size=(-1, -1), attention_chunk=0, softcap=0.0, num_splits=1,
                    pack_gqa=None, deterministic=False, sm_margin=0, return_attn_probs=False, **ignored):
    """Attention over q (B, Tq, Hq, D) and k, v (B, Tk, Hkv, D); returns out (B, Tq, Hq, Dv) in q's
    dtype, and with return_attn_probs also softmax_lse (B, Hq, Tq) float32."""
    _refuse_unimplemented(dict(qv=qv, q_descale=q_descale, k_descale=k_descale, v_descale=v_descale,
                               attention_chunk=attention_chunk, **ignored))
    _check_heads(q, k, v, packed=False)
    q_len, k_len = q.shape[1], k.shape[1]
    # On a square matrix SDPA's top-left causal mask is FA's bottom-right one: its fast kernels apply.
    is_causal = causal and window_size[0] < 0 and q_len == k_len
    allowed = None
    if not is_causal:
        q_pos = torch.arange(q_len, device=q.device)[:, None]
        k_pos = torch.arange(k_len, device=q.device)[None, :]
        allowed = _window_mask(q_pos, k_pos, k_len - q_len, causal, window_size)
    out, lse = _attend(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), allowed, is_causal,
                       softmax_scale, softcap, return_attn_probs)
    out = out.transpose(1, 2)
    return (out, lse) if return_attn_probs else out


def flash_attn_varlen_func(q, k, v, cu_seqlens_q, cu_seqlens_k, max_seqlen_q, max_seqlen_k, seqused_q=None,
                           seqused_k=None, softmax_scale=None, causal=False, qv=None, q_descale=None,
                           k_descale=None, v_descale=None, window_size=(-1, -1), attention_chunk=0,
                           softcap=0.0, num_splits=1, pack_gqa=None, deterministic=False, sm_margin=0,
                           return_attn_probs=False, **ignored):
    """Attention within each packed sequence: q (total_q, Hq, D), k, v (total_k, Hkv, D), sequence s
    spanning rows cu_seqlens[s]:cu_seqlens[s + 1]; returns out (total_q, Hq, Dv), and with
    return_attn_probs also softmax_lse (Hq, total_q) float32. Masks align per sequence."""
    _refuse_unimplemented(dict(qv=qv, q_descale=q_descale, k_descale=k_descale, v_descale=v_descale,
                               attention_chunk=attention_chunk, seqused_q=seqused_q, seqused_k=seqused_k,
                               **ignored))
    _check_heads(q, k, v, packed=True)
    q_layout = _PaddedLayout(cu_seqlens_q, max_seqlen_q, q.shape[0], q.device)
    # Records pass one cu_seqlens for both: self-attention, each sequence's queries over its own keys.
    self_attention = cu_seqlens_k is cu_seqlens_q and max_seqlen_k == max_seqlen_q
    k_layout = q_layout if self_attention else _PaddedLayout(cu_seqlens_k, max_seqlen_k, k.shape[0], q.device)
    # Sequences sit at the start of their padded rows, so a square causal mask never reaches padding.
    is_causal = causal and window_size[0] < 0 and self_attention
    allowed = None
    if not is_causal:
        q_pos = torch.arange(q_layout.max_len, device=q.device).view(1, 1, -1, 1)
        k_pos = torch.arange(k_layout.max_len, device=q.device).view(1, 1, 1, -1)
        q_lens, k_lens = q_layout.lengths.view(-1, 1, 1, 1), k_layout.lengths.view(-1, 1, 1, 1)
        allowed = k_pos < k_lens
        window = _window_mask(q_pos, k_pos, k_lens - q_lens, causal, window_size)
        if window is not None:
            allowed = allowed & window
    out, lse = _attend(q_layout.pad(q), k_layout.pad(k), k_layout.pad(v), allowed, is_causal, softmax_scale,
                       softcap, return_attn_probs)
    out = q_layout.unpad(out)
    return (out, q_layout.unpad(lse).t().contiguous()) if return_attn_probs else out


class _PaddedLayout:
    """Where each row of a packed (total, H, D) tensor sits in a (sequences, max_len) padded batch:
    sequence s's row t goes to slot s * max_len + t."""

    def __init__(self, cu_seqlens, max_len, total, device):
        cu_seqlens = cu_seqlens.to(device=device, dtype=torch.long)
        starts, ends = cu_seqlens[:-1], cu_seqlens[1:]
        rows = torch.arange(total, device=device)
        # A row's sequence is the number of sequence ends at or before it (so empty sequences are
        # skipped): counted by a scatter and a cumsum, as Inductor cannot lower searchsorted on a slice.
        ends_at = torch.zeros(total + 1, dtype=torch.long, device=device)
        ends_at = ends_at.scatter_add(0, ends.clamp(max=total), torch.ones_like(ends))
        sequence_of_row = ends_at.cumsum(0)[:total]
        self.lengths = ends - starts
        self.sequence_count, self.max_len = starts.shape[0], int(max_len)
        self.slot = sequence_of_row * self.max_len + rows - starts[sequence_of_row]

    def pad(self, packed):
        """(total, H, D) -> (sequences, H, max_len, D), zeros in the padding."""
        padded = packed.new_zeros((self.sequence_count * self.max_len, *packed.shape[1:]))
        padded = padded.index_copy(0, self.slot, packed)
        return padded.view(self.sequence_count, self.max_len, *packed.shape[1:]).transpose(1, 2)

    def unpad(self, padded):
        """(sequences, H, max_len, ...) -> (total, H, ...), dropping the padding."""
        return padded.transpose(1, 2).flatten(0, 1).index_select(0, self.slot)


def _window_mask(q_pos, k_pos, alignment, causal, window_size):
    """Which keys each query may see (True), FA's way: key j relative to query i's bottom-right aligned
    position i + alignment (alignment = Tk - Tq). None when nothing is masked."""
    left, right = window_size
    if causal:
        right = 0
    if left < 0 and right < 0:
        return None
    relative = k_pos - (q_pos + alignment)
    if right < 0:
        return relative >= -left
    if left < 0:
        return relative <= right
    return (relative >= -left) & (relative <= right)


def _attend(q, k, v, allowed, is_causal, softmax_scale, softcap, want_lse):
    """q (B, Hq, Tq, D), k and v (B, Hkv, Tk, D); allowed broadcasts to (B, 1, Tq, Tk) or is None.
    Returns out (B, Hq, Tq, Dv) in q's dtype and lse (B, Hq, Tq) float32 or None."""
    scale = q.shape[-1] ** -0.5 if softmax_scale is None else softmax_scale
    no_key = None
    if allowed is not None:
        # FA gives a query that sees no key output 0. Letting it see every key keeps softmax and its
        # gradient free of NaN; the row is zeroed afterwards.
        no_key = ~allowed.any(dim=-1, keepdim=True)
        allowed = allowed | no_key
    if softcap == 0 and not want_lse:
        out, lse = _sdpa(q, k, v, allowed, is_causal, scale), None
    else:
        out, lse = _explicit(q, k, v, allowed, is_causal, scale, softcap)
    if no_key is not None:
        out = out.masked_fill(no_key, 0.0)
        if lse is not None:
            lse = lse.masked_fill(no_key[..., 0], float("-inf"))
    return out, lse


def _sdpa(q, k, v, allowed, is_causal, scale):
    """SDPA in the inputs' dtype, on whichever fused kernel PyTorch picks."""
    gqa = {}
    if q.shape[1] != k.shape[1]:
        if _SDPA_HAS_GQA:
            gqa = {"enable_gqa": True}
        else:
            k, v = _repeat_kv_heads(k, q.shape[1]), _repeat_kv_heads(v, q.shape[1])
    return F.scaled_dot_product_attention(q, k, v, attn_mask=allowed, is_causal=is_causal, scale=scale, **gqa)


def _explicit(q, k, v, allowed, is_causal, scale, softcap):
    """Scores, softcap, mask and softmax written out (SDPA has no softcap and returns no lse),
    accumulating in float32 at least, as FA's kernels do."""
    compute_dtype = torch.promote_types(q.dtype, torch.float32)
    k = _repeat_kv_heads(k, q.shape[1]).to(compute_dtype)
    v = _repeat_kv_heads(v, q.shape[1]).to(compute_dtype)
    scores = torch.matmul(q.to(compute_dtype), k.transpose(-2, -1)) * scale
    if softcap != 0:
        scores = softcap * torch.tanh(scores / softcap)
    if is_causal:
        allowed = torch.ones(scores.shape[-2:], dtype=torch.bool, device=scores.device).tril()
    if allowed is not None:
        scores = scores.masked_fill(~allowed, float("-inf"))
    lse = torch.logsumexp(scores, dim=-1)
    out = torch.matmul(torch.exp(scores - lse[..., None]), v)
    return out.to(q.dtype), lse.float()


def _repeat_kv_heads(kv, q_heads):
    """(B, Hkv, T, D) -> (B, Hq, T, D): query head h reads kv head h // (Hq // Hkv)."""
    return kv.repeat_interleave(q_heads // kv.shape[1], dim=1)


def _check_heads(q, k, v, packed):
    layout = "(total, heads, head_dim)" if packed else "(batch, seqlen, heads, head_dim)"
    if not q.dim() == k.dim() == v.dim() == (3 if packed else 4):
        raise ValueError(f"flash_attn_interface shim: q, k, v must be {layout}; got {tuple(q.shape)}, "
                         f"{tuple(k.shape)}, {tuple(v.shape)}")
    if k.shape[-2] != v.shape[-2] or q.shape[-2] % k.shape[-2] != 0:
        raise ValueError(f"flash_attn_interface shim: q's {q.shape[-2]} heads must be a multiple of k's and "
                         f"v's ({k.shape[-2]}, {v.shape[-2]})")


def _refuse_unimplemented(options):
    for name, value in options.items():
        if name not in _UNIMPLEMENTED_DEFAULTS:
            continue
        default = _UNIMPLEMENTED_DEFAULTS[name]
        changed = value is not None if default is None else value != default
        if changed:
            raise NotImplementedError(
                f"flash_attn_interface shim: {name}={value!r} is not implemented; it covers what records "
                "use (causal, window_size, softcap, GQA/MQA, varlen). Install FlashAttention 3 instead.")
