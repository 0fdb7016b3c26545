"""The baseline-shaped model's forward written for speed: Triton GEMMs that carry the elementwise work.

bench/baseline_model.py's `BaselineShapedGPT` is written as submissions write their models: every
RMSNorm, RoPE, relu², residual add and mix is its own pass over the activations, which torch.compile
fuses with its neighbours but not into the matrix products. On one H100 that elementwise traffic was
~40 % of the evaluator's time (README). `FusedBaselineGPT` computes the same function from the same
weights with six kinds of kernel, so that the activations go through memory once per product:

- embed:    x0 = rms_norm(emb[ids]); block 0's mixed input; its per-row sums of squares
- qkv:      (x @ Wqkv^T) * rsqrt(mean(x^2) + eps) per row (the input RMSNorm as a row scale), then per
            head the q/k RMSNorm, RoPE and the query gain, in the product's epilogue
- residual: res + scale * (a @ W^T) for the attention and MLP outputs, with the next block's skip add
            and residual mix, and the sums of squares its RMSNorm needs, in the epilogue
- relu2:    relu(rsqrt(mean(x^2) + eps) * (x @ Wfc^T))^2
- first_qkv: block 0's qkv without a product: its input depends on the token alone (the embedding and
            the residual mix), so the qkv product with its row scale is a [vocab, N] table made once when
            the model is built (by the qkv kernel), and each row gathers its token's entry and gets the
            qkv epilogue's per-head RMSNorm, RoPE and gain: the product ran once per row of every window,
            and at stride 64 each token sits in 16 windows (the table, like every weight here, is taken
            when FusedBaselineGPT is built: later changes to the model are not seen)
- first_attention: block 0's attention, from the same table, shared across a batch's windows where they
            are consecutive windows of one stream (the evaluator's batches): a score between two tokens is the
            same in every window holding both, so each key block's scores are computed once, not once per
            window (see the kernel)

- attention: causal attention of the last n queries of each window (the last block's scored ones, and with
            AttentionConfig.full_windows every block's), the query heads of one KV head stacked in one tile

Full windows' attention in the other blocks stays with PyTorch's SDPA by default (cuDNN first, as the
evaluator selects: faster there than attention_kernel); the output head runs in PyTorch on the scored
positions only. RMSNorm's row scale is applied to the product
instead of its input (the same function: a row scale commutes with the product); values are rounded to the storage
dtype where the plain model stores them between blocks, and kept in fp32 inside a kernel, so the two
implementations agree to bf16 rounding, not bit for bit (the benchmark reports by how much).

For RoPE the q and k rows of each head's weights are reordered so that the two halves of a head's
dimensions alternate (j, j + D/2, ...): a rotation pair then sits in adjacent columns of the product
tile. Attention is unchanged by one permutation of the head dimensions applied to both q and k.

Kernels need a CUDA device, or TRITON_INTERPRET=1 on the CPU with float16 storage (the interpreter
cannot load bfloat16), which is how the CPU tests check them. Written for this benchmark; it is not
the challenge's code.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import Tensor

import triton
import triton.language as tl
from triton.tools.tensor_descriptor import TensorDescriptor

from baseline_model import BaselineShapedGPT
from harness import rules

SS_CHUNK = 128  # columns per partial sum of squares: a row's RMS is the sum of D / SS_CHUNK partials


@dataclass(frozen=True)
class TileConfig:
    block_m: int = 128
    block_n: int = 128
    block_k: int = 64
    num_warps: int = 8
    num_stages: int = 3
    programs_per_sm: int = 0  # 0: one program per tile; k > 0: k persistent programs per SM
    # When the epilogue's operands (residual, x0 and skip tiles, row scales, RoPE tables) are fetched:
    # "none": loaded after the product; "early": loaded before it (their latency hides behind the
    # product, at the cost of registers and shared memory); "l2": the residual kernel's tiles are
    # prefetched into L2 before the product and loaded after it (the latency of HBM hides, no cost in
    # registers or shared memory).
    prefetch: str = "none"

    def __post_init__(self) -> None:
        if self.prefetch not in PREFETCH_MODES:
            raise ValueError(f"prefetch must be one of {sorted(PREFETCH_MODES)}, not {self.prefetch!r}")


PREFETCH_MODES = {"none": 0, "early": 1, "l2": 2}  # the kernels' PREFETCH constant


# Kernels with a persistent mode; qkv has none (see qkv_kernel).
PERSISTENT_KERNELS = frozenset({"residual", "relu2"})


def persistent(configs: dict[str, TileConfig], programs_per_sm: int) -> dict[str, TileConfig]:
    """`configs` with `programs_per_sm` on every kernel that has a persistent mode."""
    return {name: replace(config, programs_per_sm=programs_per_sm if name in PERSISTENT_KERNELS else 0)
            for name, config in configs.items()}


# Chosen per kernel by `tune` on the device (the bench records the choice). The defaults have the
# lowest summed time over three tuning runs on H200s (bench/results/eval_throughput_nvidia-h200_
# fused_model*.json); the runs disagreed on the residual kernel (128 x 128 tiles with 4 warps: 0.59 ms
# in the first run, 0.74 in the other two; 256 x 128 with 8: 0.65, 0.68, 0.68).
CONFIGS: dict[str, TileConfig] = {
    "qkv": TileConfig(num_warps=4),
    "residual": TileConfig(block_m=256),
    "relu2": TileConfig(block_n=256, programs_per_sm=1),
}
EMBED_BLOCK_M = 16
FIRST_QKV_BLOCK_M = 64  # rows a program of first_qkv_kernel (one head of columns)
FIRST_ATTENTION_WARPS = 4
# Tiles for small models (width 128, one KV head of 64): CPU checks under the interpreter.
SMALL_MODEL_CONFIGS: dict[str, TileConfig] = {
    "qkv": TileConfig(block_m=32, block_n=64, block_k=32, num_warps=4, num_stages=2),
    "residual": TileConfig(block_m=32, block_n=128, block_k=32, num_warps=4, num_stages=2),
    "relu2": TileConfig(block_m=32, block_n=64, block_k=32, num_warps=4, num_stages=2),
}
SMALL_MODEL_SHAPE = dict(model_dim=128, num_heads=2, num_kv_heads=1)
SMALL_MODEL_PERSISTENT_CONFIGS = persistent(SMALL_MODEL_CONFIGS, 1)


def _power_of_two(value: int) -> bool:
    return value > 0 and value & (value - 1) == 0  # Triton's block sizes must be


def shares_first_attention_at(stride: int) -> bool:
    """Whether first_attention_kernel can share block 0's attention across windows this far apart: its
    key and query blocks are one stride of tokens, a power of two of at least 16 (tl.dot's least)."""
    return _power_of_two(stride) and stride >= 16


def _log2_softmax_scale(head_dim: int) -> float:
    """SDPA's softmax scale 1 / sqrt(head_dim) in log2 units, for the attention kernels' exp2."""
    return head_dim ** -0.5 * 1.4426950408889634


def _tl_dtype(dtype: torch.dtype):
    return {torch.bfloat16: tl.bfloat16, torch.float16: tl.float16, torch.float32: tl.float32}[dtype]


@triton.jit
def _tile_product(a_desc, w_desc, off_m, off_n, K: tl.constexpr, BM: tl.constexpr, BN: tl.constexpr,
                  BK: tl.constexpr):
    """fp32 [BM, BN] tile of A @ W^T (A [M, K] and W [N, K], both K-contiguous)."""
    acc = tl.zeros((BM, BN), dtype=tl.float32)
    for k in tl.range(0, K, BK):
        acc = tl.dot(a_desc.load([off_m, k]), w_desc.load([off_n, k]).T, acc)
    return acc


@triton.jit
def _row_rsqrt(ss_ptr, rows, M, PARTS: tl.constexpr, dim, eps):
    """rsqrt(mean of squares + eps) per row, from the row's PARTS partial sums of squares."""
    parts = tl.load(ss_ptr + rows[:, None] * PARTS + tl.arange(0, PARTS)[None, :], mask=rows[:, None] < M, other=1.0)
    return tl.rsqrt(tl.sum(parts, axis=1) / dim + eps)


@triton.jit
def _store_sum_squares(ss_ptr, values, rows, M, off_n, PARTS: tl.constexpr, BM: tl.constexpr, BN: tl.constexpr,
                       CHUNK: tl.constexpr):
    """Per row, the sums of squares of `values` over each CHUNK of columns of this tile."""
    squares = tl.reshape(values * values, (BM, BN // CHUNK, CHUNK))
    sums = tl.sum(squares, axis=2)
    cols = off_n // CHUNK + tl.arange(0, BN // CHUNK)
    tl.store(ss_ptr + rows[:, None] * PARTS + cols[None, :], sums, mask=rows[:, None] < M)


@triton.jit
def _tile_offsets(tile, N: tl.constexpr, BM: tl.constexpr, BN: tl.constexpr):
    # Consecutive tiles are the N tiles of one row block: its A rows are read from L2, not HBM.
    return (tile // (N // BN)) * BM, (tile % (N // BN)) * BN


@triton.jit
def _tiles(M, N: tl.constexpr, BM: tl.constexpr, BN: tl.constexpr):
    return tl.cdiv(M, BM) * (N // BN)


@triton.jit
def embed_kernel(ids_ptr, emb_ptr, x0_ptr, mixed_ptr, ss_ptr, mix_ptr, M, eps,
                 D: tl.constexpr, PARTS: tl.constexpr, CHUNK: tl.constexpr, BM: tl.constexpr,
                 OUT_DTYPE: tl.constexpr):
    rows = tl.program_id(0) * BM + tl.arange(0, BM)
    cols = tl.arange(0, D)
    in_range = rows[:, None] < M
    ids = tl.load(ids_ptr + rows, mask=rows < M, other=0)
    e = tl.load(emb_ptr + ids[:, None] * D + cols[None, :]).to(tl.float32)
    x0 = (e * tl.rsqrt(tl.sum(e * e, axis=1) / D + eps)[:, None]).to(OUT_DTYPE)
    tl.store(x0_ptr + rows[:, None] * D + cols[None, :], x0, mask=in_range)
    x0f = x0.to(tl.float32)
    mixed = (tl.load(mix_ptr + cols)[None, :] * x0f + tl.load(mix_ptr + D + cols)[None, :] * x0f).to(OUT_DTYPE)
    tl.store(mixed_ptr + rows[:, None] * D + cols[None, :], mixed, mask=in_range)
    mf = mixed.to(tl.float32)
    _store_sum_squares(ss_ptr, mf, rows, M, 0, PARTS, BM, D, CHUNK)


@triton.jit
def _qkv_epilogue_inputs(ss_ptr, cos_ptr, sin_ptr, gain_ptr, rows, off_n, M, rows_per_window, pos_offset, eps,
                         D: tl.constexpr, Q_COLS: tl.constexpr, K_COLS: tl.constexpr, HEAD_DIM: tl.constexpr,
                         PARTS: tl.constexpr, BN: tl.constexpr):
    """The row scale of the input RMSNorm, the RoPE tables of these rows (loaded only for q and k
    tiles) and the query gain of this tile's heads (1 on key tiles)."""
    HEADS: tl.constexpr = BN // HEAD_DIM
    HALF: tl.constexpr = HEAD_DIM // 2
    scale = _row_rsqrt(ss_ptr, rows, M, PARTS, D, eps)
    positions = rows % rows_per_window + pos_offset
    j = tl.arange(0, HALF)
    # off_n broadcast over the rows: Triton 3.9's interpreter refuses a block mask & a scalar one
    rotates = (rows[:, None] < M) & (rows[:, None] * 0 + off_n < Q_COLS + K_COLS)
    cos = tl.load(cos_ptr + positions[:, None] * HALF + j[None, :], mask=rotates, other=0.0)[:, None, :]
    sin = tl.load(sin_ptr + positions[:, None] * HALF + j[None, :], mask=rotates, other=0.0)[:, None, :]
    heads_here = off_n // HEAD_DIM + tl.arange(0, HEADS)
    gain = tl.load(gain_ptr + heads_here, mask=heads_here < Q_COLS // HEAD_DIM, other=1.0)[None, :, None]
    return scale, cos, sin, gain


@triton.jit
def _norm_rope_gain(values, cos, sin, gain, eps, BM: tl.constexpr, HEADS: tl.constexpr, HEAD_DIM: tl.constexpr):
    """The qkv epilogue on q or k columns, fp32 [BM, HEADS * HEAD_DIM] in and out: per head the RMSNorm,
    RoPE on the rotation pairs (adjacent columns; cos, sin [BM, 1, HEAD_DIM / 2]) and the gain
    (broadcasting to [BM, HEADS, HEAD_DIM / 2]: the query gain, 1 on keys)."""
    HALF: tl.constexpr = HEAD_DIM // 2
    heads = tl.reshape(values, (BM, HEADS, HEAD_DIM))
    heads = heads * tl.rsqrt(tl.sum(heads * heads, axis=2) / HEAD_DIM + eps)[:, :, None]
    first, second = tl.split(tl.reshape(heads, (BM, HEADS, HALF, 2)))  # columns alternate halves
    rotated = tl.join((first * cos + second * sin) * gain, (second * cos - first * sin) * gain)
    return tl.reshape(rotated, (BM, HEADS * HEAD_DIM))


@triton.jit
def _qkv_tile(tile, a_desc, w_desc, q_desc, kv_desc, ss_ptr, cos_ptr, sin_ptr, gain_ptr, M, rows_per_window,
              pos_offset, eps, D: tl.constexpr, N: tl.constexpr, Q_COLS: tl.constexpr, K_COLS: tl.constexpr,
              HEAD_DIM: tl.constexpr, PARTS: tl.constexpr, BM: tl.constexpr, BN: tl.constexpr, BK: tl.constexpr,
              OUT_DTYPE: tl.constexpr, PREFETCH: tl.constexpr):
    """Columns [0, Q_COLS) of the product are queries, stored to q [M, Q_COLS] (time-major, as the
    plain model's q, so that attention writes its output time-major too); the rest keys then values,
    stored to kv [M, N - Q_COLS]."""
    off_m, off_n = _tile_offsets(tile, N, BM, BN)
    rows = off_m + tl.arange(0, BM)
    if PREFETCH == 1:
        scale, cos, sin, gain = _qkv_epilogue_inputs(ss_ptr, cos_ptr, sin_ptr, gain_ptr, rows, off_n, M,
                                                     rows_per_window, pos_offset, eps, D, Q_COLS, K_COLS,
                                                     HEAD_DIM, PARTS, BN)
    acc = _tile_product(a_desc, w_desc, off_m, off_n, D, BM, BN, BK)
    if PREFETCH != 1:
        scale, cos, sin, gain = _qkv_epilogue_inputs(ss_ptr, cos_ptr, sin_ptr, gain_ptr, rows, off_n, M,
                                                     rows_per_window, pos_offset, eps, D, Q_COLS, K_COLS,
                                                     HEAD_DIM, PARTS, BN)
    # The block's input RMSNorm, as a row scale on the product; rounded where the model stores q, k, v.
    acc = (acc * scale[:, None]).to(OUT_DTYPE).to(tl.float32)
    if off_n < Q_COLS + K_COLS:
        rotated = _norm_rope_gain(acc, cos, sin, gain, eps, BM, BN // HEAD_DIM, HEAD_DIM).to(OUT_DTYPE)
        if off_n < Q_COLS:
            q_desc.store([off_m, off_n], rotated)
        else:
            kv_desc.store([off_m, off_n - Q_COLS], rotated)
    else:
        kv_desc.store([off_m, off_n - Q_COLS], acc.to(OUT_DTYPE))


@triton.jit
def first_qkv_kernel(ids_ptr, table_ptr, cos_ptr, sin_ptr, gain_ptr, q_ptr, kv_ptr, M, rows_per_window, eps,
                     N: tl.constexpr, Q_COLS: tl.constexpr, K_COLS: tl.constexpr, HEAD_DIM: tl.constexpr,
                     BM: tl.constexpr, OUT_DTYPE: tl.constexpr):
    """Block 0's q, k and v by token id: block 0's input is a function of the token alone (its embedding
    and the residual mix), not of the window, so the qkv product with its row scale is a table computed
    once per vocabulary entry ([vocab, N], rounded where qkv_kernel rounds it). A program takes BM rows
    and one head's columns, gathers their table rows and applies qkv_kernel's epilogue from there on:
    the per-head RMSNorm, RoPE at the row's position in its window, the query gain (values: copied)."""
    HALF: tl.constexpr = HEAD_DIM // 2
    rows = tl.program_id(0) * BM + tl.arange(0, BM)
    off_n = tl.program_id(1) * HEAD_DIM
    in_range = rows[:, None] < M
    ids = tl.load(ids_ptr + rows, mask=rows < M, other=0)
    cols = off_n + tl.arange(0, HEAD_DIM)
    y = tl.load(table_ptr + ids[:, None].to(tl.int64) * N + cols[None, :]).to(tl.float32)
    out_cols = tl.where(off_n < Q_COLS, cols, cols - Q_COLS)
    if off_n < Q_COLS + K_COLS:
        positions = rows % rows_per_window
        j = tl.arange(0, HALF)
        cos = tl.load(cos_ptr + positions[:, None] * HALF + j[None, :], mask=in_range, other=0.0)[:, None, :]
        sin = tl.load(sin_ptr + positions[:, None] * HALF + j[None, :], mask=in_range, other=0.0)[:, None, :]
        gain = tl.load(gain_ptr + off_n // HEAD_DIM, mask=off_n < Q_COLS, other=1.0)
        rotated = _norm_rope_gain(y, cos, sin, gain, eps, BM, 1, HEAD_DIM).to(OUT_DTYPE)
        if off_n < Q_COLS:
            tl.store(q_ptr + rows[:, None] * Q_COLS + out_cols[None, :], rotated, mask=in_range)
        else:
            tl.store(kv_ptr + rows[:, None] * (N - Q_COLS) + out_cols[None, :], rotated, mask=in_range)
    else:
        tl.store(kv_ptr + rows[:, None] * (N - Q_COLS) + out_cols[None, :], y.to(OUT_DTYPE), mask=in_range)


@triton.jit
def _rotated_table_rows(table_ptr, cos_ptr, sin_ptr, ids, first_cols, positions, gain, eps, N: tl.constexpr,
                        ROWS: tl.constexpr, HEAD_DIM: tl.constexpr, OUT_DTYPE: tl.constexpr):
    """One head's q or k for ROWS rows, from block 0's table as first_qkv_kernel makes them: row r is table row
    ids[r] from column first_cols[r] on, with the per-head RMSNorm, RoPE at positions[r] and the gain."""
    HALF: tl.constexpr = HEAD_DIM // 2
    j = tl.arange(0, HALF)
    values = tl.load(table_ptr + ids[:, None] * N + first_cols[:, None] + tl.arange(0, HEAD_DIM)[None, :])
    cos = tl.load(cos_ptr + positions[:, None] * HALF + j[None, :])[:, None, :]
    sin = tl.load(sin_ptr + positions[:, None] * HALF + j[None, :])[:, None, :]
    return _norm_rope_gain(values.to(tl.float32), cos, sin, gain, eps, ROWS, 1, HEAD_DIM).to(OUT_DTYPE)


@triton.jit
def first_attention_kernel(stream_ptr, ids_ptr, consecutive_ptr, table_ptr, cos_ptr, sin_ptr, gain_ptr, y_ptr,
                           windows, eps, qk_scale, N: tl.constexpr, Q_COLS: tl.constexpr, K_COLS: tl.constexpr,
                           HEAD_DIM: tl.constexpr, GROUP: tl.constexpr, STRIDE: tl.constexpr,
                           WINDOW_BLOCKS: tl.constexpr, OUT_DTYPE: tl.constexpr):
    """Block 0's attention for `windows` windows (ids [windows, WINDOW_BLOCKS * STRIDE]), shared across them
    where they are consecutive windows of one stream, STRIDE apart (*consecutive_ptr, found on the device:
    the host never waits for it); stream_ptr then holds the (windows + WINDOW_BLOCKS - 1) * STRIDE tokens
    they cover. y is [windows * WINDOW_BLOCKS * STRIDE, Q_COLS], time-major like SDPA's output.

    Block 0's q, k and v are functions of the token and its position in the window (first_qkv_kernel), and
    RoPE makes a score depend on the two positions' difference only, so the scores between two tokens are
    the same in every window that holds both. Every window's attention of a query block (STRIDE queries of
    one stream block A) then differs only in where its keys start: window w (starting at stream block w)
    sees key blocks w .. A. A program takes one query block and the GROUP query heads of one KV head, walks
    the key blocks backwards from A with the online softmax, and after key block B stores the normalised
    output as window B's rows of block A: each key block's scores are computed once instead of once per
    window. q and k come from the table as first_qkv_kernel makes them, with RoPE at their positions in the
    earliest window of the batch that holds block A (every key block walked lies in it).

    Rows that are not consecutive windows get the same walk per window: a program takes one query block of
    one window, walks that window's key blocks back to its start and stores once, at the end."""
    ROWS: tl.constexpr = GROUP * STRIDE  # the group's heads stacked: row m is head m // STRIDE, query m % STRIDE
    program = tl.program_id(0)
    kv_head = tl.program_id(1)
    shared = tl.load(consecutive_ptr) != 0
    if shared:  # program = the stream block A of the queries; the grid has more programs than blocks
        tokens, block = stream_ptr, program
        first = tl.maximum(program - (WINDOW_BLOCKS - 1), 0)  # the earliest window holding block A
        position = (program - first) * STRIDE  # of block A in that window
        active = program < windows + WINDOW_BLOCKS - 1
    else:  # program = window * WINDOW_BLOCKS + the query block in it
        tokens, block = ids_ptr, program
        position = (program % WINDOW_BLOCKS) * STRIDE
        active = program < windows * WINDOW_BLOCKS
    if active:
        m = tl.arange(0, ROWS)
        query = m % STRIDE
        head = kv_head * GROUP + m // STRIDE
        d = tl.arange(0, HEAD_DIM)
        q_ids = tl.load(tokens + block * STRIDE + query).to(tl.int64)
        q = _rotated_table_rows(table_ptr, cos_ptr, sin_ptr, q_ids, head * HEAD_DIM, position + query,
                                tl.load(gain_ptr + head)[:, None, None], eps, N, ROWS, HEAD_DIM, OUT_DTYPE)
        key = tl.arange(0, STRIDE)
        k_col = Q_COLS + kv_head * HEAD_DIM
        v_cols = k_col + K_COLS + d
        row_max = tl.full((ROWS,), float("-inf"), tl.float32)
        row_sum = tl.zeros((ROWS,), tl.float32)
        acc = tl.zeros((ROWS, HEAD_DIM), tl.float32)
        steps = position // STRIDE + 1  # the key blocks back to the window's start
        for step in range(0, steps):
            k_ids = tl.load(tokens + (block - step) * STRIDE + key).to(tl.int64)
            k_pos = position - step * STRIDE + key
            k = _rotated_table_rows(table_ptr, cos_ptr, sin_ptr, k_ids, key * 0 + k_col, k_pos, 1.0, eps, N, STRIDE,
                                    HEAD_DIM, OUT_DTYPE)
            v = tl.load(table_ptr + k_ids[:, None] * N + v_cols[None, :])
            scores = tl.dot(q, tl.trans(k)) * qk_scale  # log2 units: exp2 below
            # Causal within the query block; the key blocks before it are wholly visible.
            visible = (key[None, :] <= query[:, None]) | (key[None, :] * 0 + step > 0)  # a block, not block | scalar
            scores = tl.where(visible, scores, float("-inf"))
            new_max = tl.maximum(row_max, tl.max(scores, axis=1))
            p = tl.exp2(scores - new_max[:, None])
            rescale = tl.exp2(row_max - new_max)
            row_sum = row_sum * rescale + tl.sum(p, axis=1)
            acc = acc * rescale[:, None] + tl.dot(p.to(OUT_DTYPE), v)
            row_max = new_max
            # shared: window B = block - step has seen its keys, blocks B .. A; per window: at the window's start
            if tl.where(shared, block - step < windows, step == steps - 1):
                row_block = tl.where(shared, (block - step) * WINDOW_BLOCKS + step, block)
                rows = row_block * STRIDE + query
                tl.store(y_ptr + rows[:, None].to(tl.int64) * Q_COLS + head[:, None] * HEAD_DIM + d[None, :],
                         (acc / row_sum[:, None]).to(OUT_DTYPE))


@dataclass(frozen=True)
class AttentionConfig:
    """Tiles of attention_kernel: block_q queries of `stack` query heads (of one KV head) per program, keys
    block_k at a time; full_windows: also the attention of every query of a window (else SDPA's causal
    attention takes those, and the kernel the last block's scored queries only); tma: keys and values by
    bulk tensor copies (Hopper's TMA) instead of pointer loads. (Triton 3.6's warp specialisation
    generated no specialised code for this loop on sm_90a, pointers or TMA: not offered.)"""

    block_q: int = 64
    block_k: int = 64
    stack: int = 2
    num_warps: int = 8
    num_stages: int = 3
    full_windows: bool = False
    tma: bool = False

    def __post_init__(self) -> None:
        for name in ("block_q", "block_k", "stack"):
            if not _power_of_two(getattr(self, name)):
                raise ValueError(f"attention {name} must be a power of two, not {getattr(self, name)}")
        if self.block_q < 16 or self.block_k < 16:
            raise ValueError(f"attention blocks of {self.block_q} queries and {self.block_k} keys: tl.dot needs 16")


# Among the fastest tiles on H200s for both the full windows and the last block's 64 queries (bench/results/
# attention_speed_nvidia-h200*.json: TMA and 4 warps within 1 %); there SDPA (cuDNN) beat the kernel on full
# causal windows (0.77 vs 0.87 ms a batch) and lost on the last block's (its mask path: 0.28 vs 0.11 ms),
# hence full_windows=False.
ATTENTION_TILES = AttentionConfig()


@triton.jit
def attention_kernel(q_ptr, kv_ptr, kv_desc, y_ptr, windows, length, qk_scale, QUERIES: tl.constexpr,
                     Q_COLS: tl.constexpr, K_COLS: tl.constexpr, HEAD_DIM: tl.constexpr,
                     HEADS_PER_KV: tl.constexpr, STACK: tl.constexpr, BLOCK_Q: tl.constexpr,
                     BLOCK_K: tl.constexpr, OUT_DTYPE: tl.constexpr, TMA: tl.constexpr):
    """Causal attention of the last QUERIES queries of each window (all of them, or the last block's scored
    ones) over the window's `length` keys, as SDPA computes it (scale 1 / sqrt(HEAD_DIM), softmax in fp32,
    the probabilities rounded to the storage dtype for the product with v): q is [windows * QUERIES,
    Q_COLS], kv [windows * length, 2 * K_COLS] (k, then v), y like q; all time-major. With TMA, kv_desc is a
    tensor descriptor of kv in [BLOCK_K, HEAD_DIM] blocks (keys and values by bulk tensor copies); else kv.

    A program takes BLOCK_Q queries of STACK query heads that share one KV head, stacked as the rows of one
    tile (row r: head r // BLOCK_Q, query r % BLOCK_Q), so that each key and value block it loads serves
    them all, and walks the key blocks from the window's start with the online softmax: wholly visible
    blocks without a mask, then the blocks on the diagonal with one. The programs with the most key blocks
    (the last query blocks) come first in the grid."""
    ROWS: tl.constexpr = STACK * BLOCK_Q
    Q_BLOCKS: tl.constexpr = QUERIES // BLOCK_Q
    program = tl.program_id(0)
    q_block = Q_BLOCKS - 1 - program // windows  # the longest walks first
    window = program % windows
    head_first = tl.program_id(1) * STACK
    kv_head = head_first // HEADS_PER_KV
    first_query = length - QUERIES + q_block * BLOCK_Q  # its position in the window
    m = tl.arange(0, ROWS)
    query = first_query + m % BLOCK_Q
    head = head_first + m // BLOCK_Q
    d = tl.arange(0, HEAD_DIM)
    q_rows = (window * QUERIES + q_block * BLOCK_Q + m % BLOCK_Q).to(tl.int64)
    q = tl.load(q_ptr + q_rows[:, None] * Q_COLS + head[:, None] * HEAD_DIM + d[None, :])
    key = tl.arange(0, BLOCK_K)
    k_base = kv_ptr + (window * length).to(tl.int64) * (2 * K_COLS) + kv_head * HEAD_DIM
    row_max = tl.full((ROWS,), float("-inf"), tl.float32)
    row_sum = tl.zeros((ROWS,), tl.float32)
    acc = tl.zeros((ROWS, HEAD_DIM), tl.float32)
    visible_end = first_query // BLOCK_K * BLOCK_K  # keys before it are visible to every query here
    window_row = window * length
    k_col = kv_head * HEAD_DIM
    for start in range(0, visible_end, BLOCK_K):
        acc, row_sum, row_max = _attend_keys(acc, row_sum, row_max, q, k_base, kv_desc, window_row, k_col, start,
                                             key, query, qk_scale, K_COLS, HEAD_DIM, False, TMA, OUT_DTYPE)
    for start in range(visible_end, first_query + BLOCK_Q, BLOCK_K):
        acc, row_sum, row_max = _attend_keys(acc, row_sum, row_max, q, k_base, kv_desc, window_row, k_col, start,
                                             key, query, qk_scale, K_COLS, HEAD_DIM, True, TMA, OUT_DTYPE)
    tl.store(y_ptr + q_rows[:, None] * Q_COLS + head[:, None] * HEAD_DIM + d[None, :],
             (acc / row_sum[:, None]).to(OUT_DTYPE))


@triton.jit
def _attend_keys(acc, row_sum, row_max, q, k_base, kv_desc, window_row, k_col, start, key, query, qk_scale,
                 K_COLS: tl.constexpr, HEAD_DIM: tl.constexpr, MASK: tl.constexpr, TMA: tl.constexpr,
                 OUT_DTYPE: tl.constexpr):
    """One key block's step of the online softmax (attention_kernel): keys start .. start + BLOCK_K - 1,
    loaded by bulk tensor copies (TMA) or by pointers."""
    if TMA:
        k = kv_desc.load([window_row + start, k_col])
        v = kv_desc.load([window_row + start, K_COLS + k_col])
    else:
        d = tl.arange(0, HEAD_DIM)
        rows = (start + key).to(tl.int64)[:, None] * (2 * K_COLS)
        k = tl.load(k_base + rows + d[None, :])
        v = tl.load(k_base + rows + K_COLS + d[None, :])
    scores = tl.dot(q, tl.trans(k))
    if MASK:
        scores = tl.where((start + key)[None, :] <= query[:, None], scores, float("-inf"))
    new_max = tl.maximum(row_max, tl.max(scores, axis=1) * qk_scale)  # log2 units: exp2 below
    p = tl.exp2(scores * qk_scale - new_max[:, None])  # one multiply-add a score
    rescale = tl.exp2(row_max - new_max)
    row_sum = row_sum * rescale + tl.sum(p, axis=1)
    acc = acc * rescale[:, None] + tl.dot(p.to(OUT_DTYPE), v)
    return acc, row_sum, new_max


@triton.jit
def _prefetch_tile_l2(ptr, off_m, off_n, M, N: tl.constexpr, BM: tl.constexpr, BN: tl.constexpr,
                      DTYPE: tl.constexpr):
    """Ask for this [BM, BN] tile of a row-major [M, N] tensor to be brought into L2: one PTX prefetch
    per 128-byte line (rows past M are clamped to the last row). Compiled code only: the interpreter
    cannot run inline assembly."""
    LINE: tl.constexpr = 1024 // DTYPE.primitive_bitwidth  # elements per 128-byte line
    rows = tl.minimum(off_m + tl.arange(0, BM), M - 1)
    cols = off_n + tl.arange(0, BN // LINE) * LINE
    addresses = ptr + rows[:, None] * N + cols[None, :]
    tl.inline_asm_elementwise("prefetch.global.L2 [$1]; mov.u32 $0, 0;", "=r,l", [addresses], dtype=tl.int32,
                              is_pure=False, pack=1)


@triton.jit
def _residual_epilogue_tiles(res_desc, skip_desc, x0_desc, off_m, off_n, SKIP: tl.constexpr, MIX: tl.constexpr):
    """The residual tile, and the stored skip (SKIP 1) and x0 (MIX) tiles; the residual stands in for
    the ones this variant does not read."""
    res = res_desc.load([off_m, off_n])
    skip = res
    x0 = res
    if MIX:
        x0 = x0_desc.load([off_m, off_n])
        if SKIP == 1:
            skip = skip_desc.load([off_m, off_n])
    return res, skip, x0


@triton.jit
def _residual_tile(tile, a_desc, w_desc, res_desc, scale_ptr, out_desc, ss_ptr, extra_desc, skip_desc, skip_w_ptr,
                   x0_desc, mix_ptr, res_ptr, x0_ptr, skip_ptr, M, N: tl.constexpr, K: tl.constexpr,
                   PARTS: tl.constexpr, STORE_EXTRA: tl.constexpr, SKIP: tl.constexpr, MIX: tl.constexpr,
                   WRITE_SS: tl.constexpr, CHUNK: tl.constexpr, BM: tl.constexpr, BN: tl.constexpr, BK: tl.constexpr,
                   OUT_DTYPE: tl.constexpr, PREFETCH: tl.constexpr):
    """x = res + scale * (a @ W^T); with STORE_EXTRA, x is also stored to extra (a U-net skip source);
    with SKIP (1: from skip, 2: x itself) x += skip_w * skip; with MIX, x = mix0 * x + mix1 * x0;
    then out = x and, with WRITE_SS, its per-row partial sums of squares."""
    off_m, off_n = _tile_offsets(tile, N, BM, BN)
    rows = off_m + tl.arange(0, BM)
    cols = off_n + tl.arange(0, BN)
    if PREFETCH == 1:
        res, skip, x0 = _residual_epilogue_tiles(res_desc, skip_desc, x0_desc, off_m, off_n, SKIP, MIX)
    elif PREFETCH == 2:
        _prefetch_tile_l2(res_ptr, off_m, off_n, M, N, BM, BN, OUT_DTYPE)
        if MIX:
            _prefetch_tile_l2(x0_ptr, off_m, off_n, M, N, BM, BN, OUT_DTYPE)
            if SKIP == 1:
                _prefetch_tile_l2(skip_ptr, off_m, off_n, M, N, BM, BN, OUT_DTYPE)
    product = _tile_product(a_desc, w_desc, off_m, off_n, K, BM, BN, BK).to(OUT_DTYPE).to(tl.float32)
    if PREFETCH != 1:
        res, skip, x0 = _residual_epilogue_tiles(res_desc, skip_desc, x0_desc, off_m, off_n, SKIP, MIX)
    x = res.to(tl.float32) + tl.load(scale_ptr + cols)[None, :] * product
    x = x.to(OUT_DTYPE)
    if STORE_EXTRA:
        extra_desc.store([off_m, off_n], x)
    if MIX:
        xf = x.to(tl.float32)
        if SKIP == 1:
            xf = (xf + tl.load(skip_w_ptr + cols)[None, :] * skip.to(tl.float32))
            xf = xf.to(OUT_DTYPE).to(tl.float32)
        elif SKIP == 2:
            xf = (xf + tl.load(skip_w_ptr + cols)[None, :] * xf).to(OUT_DTYPE).to(tl.float32)
        x = (tl.load(mix_ptr + cols)[None, :] * xf + tl.load(mix_ptr + N + cols)[None, :] * x0.to(tl.float32))
        x = x.to(OUT_DTYPE)
    out_desc.store([off_m, off_n], x)
    if WRITE_SS:
        xf = x.to(tl.float32)
        _store_sum_squares(ss_ptr, xf, rows, M, off_n, PARTS, BM, BN, CHUNK)


@triton.jit
def _relu2_tile(tile, a_desc, w_desc, out_desc, ss_ptr, M, eps, D: tl.constexpr, N: tl.constexpr,
                PARTS: tl.constexpr, BM: tl.constexpr, BN: tl.constexpr, BK: tl.constexpr, OUT_DTYPE: tl.constexpr,
                PREFETCH: tl.constexpr):
    off_m, off_n = _tile_offsets(tile, N, BM, BN)
    rows = off_m + tl.arange(0, BM)
    if PREFETCH == 1:
        scale = _row_rsqrt(ss_ptr, rows, M, PARTS, D, eps)
    acc = _tile_product(a_desc, w_desc, off_m, off_n, D, BM, BN, BK)
    if PREFETCH != 1:
        scale = _row_rsqrt(ss_ptr, rows, M, PARTS, D, eps)
    h = (acc * scale[:, None]).to(OUT_DTYPE).to(tl.float32)
    h = tl.maximum(h, 0.0)
    out_desc.store([off_m, off_n], (h * h).to(OUT_DTYPE))


# The kernels: one tile per program, or (PERSISTENT, where the compiler takes it) one program per SM
# share walking the tiles, so that the pipeliner can load the next tile's operands while this tile's
# epilogue runs.

@triton.jit
def qkv_kernel(a_desc, w_desc, q_desc, kv_desc, ss_ptr, cos_ptr, sin_ptr, gain_ptr, M, rows_per_window, pos_offset,
               eps, D: tl.constexpr, N: tl.constexpr, Q_COLS: tl.constexpr, K_COLS: tl.constexpr,
               HEAD_DIM: tl.constexpr, PARTS: tl.constexpr, BM: tl.constexpr, BN: tl.constexpr, BK: tl.constexpr,
               OUT_DTYPE: tl.constexpr, PREFETCH: tl.constexpr):
    # One tile per program only: Triton 3.6 cannot flatten a persistent loop around this epilogue's
    # branches (TritonGPUFuseNestedLoops fails; bench/kernel_report.py --candidates shows it).
    _qkv_tile(tl.program_id(0), a_desc, w_desc, q_desc, kv_desc, ss_ptr, cos_ptr, sin_ptr, gain_ptr, M,
              rows_per_window, pos_offset, eps, D, N, Q_COLS, K_COLS, HEAD_DIM, PARTS, BM, BN, BK, OUT_DTYPE,
              PREFETCH)


@triton.jit
def residual_kernel(a_desc, w_desc, res_desc, scale_ptr, out_desc, ss_ptr, extra_desc, skip_desc, skip_w_ptr,
                    x0_desc, mix_ptr, res_ptr, x0_ptr, skip_ptr, M, N: tl.constexpr, K: tl.constexpr,
                    PARTS: tl.constexpr, STORE_EXTRA: tl.constexpr, SKIP: tl.constexpr, MIX: tl.constexpr,
                    WRITE_SS: tl.constexpr, CHUNK: tl.constexpr, BM: tl.constexpr, BN: tl.constexpr, BK: tl.constexpr,
                    OUT_DTYPE: tl.constexpr, PERSISTENT: tl.constexpr, PREFETCH: tl.constexpr):
    if PERSISTENT:
        for tile in tl.range(tl.program_id(0), _tiles(M, N, BM, BN), tl.num_programs(0), flatten=True):
            _residual_tile(tile, a_desc, w_desc, res_desc, scale_ptr, out_desc, ss_ptr, extra_desc, skip_desc,
                           skip_w_ptr, x0_desc, mix_ptr, res_ptr, x0_ptr, skip_ptr, M, N, K, PARTS, STORE_EXTRA, SKIP,
                           MIX, WRITE_SS, CHUNK, BM, BN, BK, OUT_DTYPE, PREFETCH)
    else:
        _residual_tile(tl.program_id(0), a_desc, w_desc, res_desc, scale_ptr, out_desc, ss_ptr, extra_desc, skip_desc,
                       skip_w_ptr, x0_desc, mix_ptr, res_ptr, x0_ptr, skip_ptr, M, N, K, PARTS, STORE_EXTRA, SKIP, MIX,
                       WRITE_SS, CHUNK, BM, BN, BK, OUT_DTYPE, PREFETCH)


@triton.jit
def relu2_kernel(a_desc, w_desc, out_desc, ss_ptr, M, eps, D: tl.constexpr, N: tl.constexpr, PARTS: tl.constexpr,
                 BM: tl.constexpr, BN: tl.constexpr, BK: tl.constexpr, OUT_DTYPE: tl.constexpr,
                 PERSISTENT: tl.constexpr, PREFETCH: tl.constexpr):
    if PERSISTENT:
        for tile in tl.range(tl.program_id(0), _tiles(M, N, BM, BN), tl.num_programs(0), flatten=True):
            _relu2_tile(tile, a_desc, w_desc, out_desc, ss_ptr, M, eps, D, N, PARTS, BM, BN, BK, OUT_DTYPE, PREFETCH)
    else:
        _relu2_tile(tl.program_id(0), a_desc, w_desc, out_desc, ss_ptr, M, eps, D, N, PARTS, BM, BN, BK, OUT_DTYPE,
                    PREFETCH)


@triton.jit
def product_kernel(a_desc, w_desc, out_desc, M, N: tl.constexpr, K: tl.constexpr, BM: tl.constexpr, BN: tl.constexpr,
                   BK: tl.constexpr, OUT_DTYPE: tl.constexpr):
    """The bare product out = A @ W^T on the same tiles (for `tune`: how much of a kernel's time is the
    product and how much its epilogue)."""
    off_m, off_n = _tile_offsets(tl.program_id(0), N, BM, BN)
    out_desc.store([off_m, off_n], _tile_product(a_desc, w_desc, off_m, off_n, K, BM, BN, BK).to(OUT_DTYPE))


def triton_product(a: Tensor, w: Tensor, config: TileConfig) -> Tensor:
    rows, cols = a.shape[0], w.shape[0]
    out = torch.empty(rows, cols, dtype=a.dtype, device=a.device)
    product_kernel[_grid(rows, cols, replace(config, programs_per_sm=0), a.device)](
        _desc(a, (config.block_m, config.block_k)), _desc(w, (config.block_n, config.block_k)),
        _desc(out, (config.block_m, config.block_n)), rows, N=cols, K=a.shape[1], BM=config.block_m,
        BN=config.block_n, BK=config.block_k, OUT_DTYPE=_tl_dtype(a.dtype), num_warps=config.num_warps,
        num_stages=config.num_stages)
    return out


def applies(kernel: str, config: TileConfig) -> bool:
    """Whether `config` is a configuration of this kernel at all (persistent mode, sums-of-squares
    chunks); shape-dependent limits are checked at launch."""
    if config.programs_per_sm and kernel not in PERSISTENT_KERNELS:
        return False
    if config.prefetch == "l2" and kernel != "residual":  # the others' epilogue inputs are small tables
        return False
    # The second H200 tuning run: the persistent residual kernel with its tiles loaded early took 39-118 ms
    # instead of 0.8 (bench/results/eval_throughput_nvidia-h200_fused_model_second_tuning.json).
    if kernel == "residual" and config.programs_per_sm and config.prefetch == "early":
        return False
    return not (kernel == "residual" and config.block_n % SS_CHUNK)


def _desc(t: Tensor, block: tuple[int, int]) -> TensorDescriptor:
    return TensorDescriptor.from_tensor(t, list(block))


def launch_options(config: TileConfig, persistent_mode: bool = True) -> dict:
    """The keyword arguments a product kernel takes from its tile configuration: block sizes, PREFETCH,
    PERSISTENT (for kernels with that mode), num_warps and num_stages."""
    options = dict(BM=config.block_m, BN=config.block_n, BK=config.block_k, num_warps=config.num_warps,
                   num_stages=config.num_stages, PREFETCH=PREFETCH_MODES[config.prefetch])
    if persistent_mode:
        options["PERSISTENT"] = config.programs_per_sm > 0
    return options


def _grid(rows: int, cols: int, config: TileConfig, device: torch.device) -> tuple[int]:
    if cols % config.block_n:  # the kernels take N // BN column tiles: a remainder would be skipped
        raise ValueError(f"{cols} output columns do not divide into tiles of {config.block_n}")
    tiles = triton.cdiv(rows, config.block_m) * (cols // config.block_n)
    if not config.programs_per_sm:
        return (tiles,)
    return (min(tiles, config.programs_per_sm * _processor_count(device)),)


def _processor_count(device: torch.device) -> int:
    if device.type == "cuda":
        return torch.cuda.get_device_properties(device).multi_processor_count
    return INTERPRETER_PROCESSORS


INTERPRETER_PROCESSORS = 2  # on the CPU (interpreter): few programs, so each walks several tiles


def rope_pair_order(head_dim: int) -> Tensor:
    """Row order of a head's q/k weights that makes the rotation halves alternate: j, j + D/2, ..."""
    half = head_dim // 2
    return torch.stack((torch.arange(half), torch.arange(half) + half), dim=1).reshape(-1)


class FusedBaselineGPT:
    """`forward_logits(ids, last_n)` of a BaselineShapedGPT, with the kernels above (same weights)."""

    def __init__(self, model: BaselineShapedGPT, configs: dict[str, TileConfig] | None = None,
                 gluon_configs: dict | None = None, first_block_table: bool = True,
                 window_stride: int | None = rules.EVAL_STRIDE,
                 attention: AttentionConfig | None = ATTENTION_TILES) -> None:
        """gluon_configs: {"qkv", "residual", "relu2": ws_gemm.WsConfig}, any of them, to run those kernels as
        bench/ws_gemm.py's warp-specialised Gluon products (Hopper only), the same function; with "residual",
        "residual_skip" and "residual_attn" give those kinds of residual launch their own tiles
        (ws_gemm.CONFIGS). first_block_table: block 0's q, k, v from a table of its qkv product for every token
        id (first_qkv_kernel) instead of a product over every row of every window. window_stride (with the
        table): a batch whose rows are consecutive windows of one stream this far apart, as the evaluator's
        batches are, computes block 0's attention once for all of them (first_attention_kernel); None: per
        window always. attention: attention_kernel's tiles, for the last block's scored queries (and with
        full_windows for the other blocks' too); None: SDPA everywhere (cuDNN, where the evaluator selects
        it)."""
        shape = model.shape
        self.model, self.shape = model, shape
        self.configs = dict(CONFIGS if configs is None else configs)
        self.gluon_configs = dict(gluon_configs or {})
        if self.gluon_configs:
            import ws_gemm  # Gluon: needs a Triton that has it, and a Hopper GPU to run

            self._ws = ws_gemm
        self.eval_seq_len, self.vocab_size = model.eval_seq_len, model.vocab_size
        self.dtype = model.tok_emb.weight.dtype
        self.out_dtype = _tl_dtype(self.dtype)
        # F.rms_norm's default eps is that of its compute dtype (fp32 for fp16/bf16 inputs, measured:
        # not the input dtype's, as its docstring says)
        self.eps = torch.finfo(torch.promote_types(self.dtype, torch.float32)).eps
        dim, head_dim = shape.model_dim, shape.head_dim
        if not (_power_of_two(dim) and dim >= SS_CHUNK and _power_of_two(head_dim) and head_dim >= 16):
            raise ValueError(f"the fused forward needs a power-of-two width of at least {SS_CHUNK} and a power-of-two "
                             f"head dimension of at least 16, not {dim} and {head_dim}")
        self.parts = dim // SS_CHUNK
        group = shape.num_heads // shape.num_kv_heads
        if window_stride is not None and not shares_first_attention_at(window_stride):
            raise ValueError(f"sharing block 0's attention needs a power-of-two window stride of at least 16, not "
                             f"{window_stride}")
        if window_stride is not None and not _power_of_two(group):
            raise ValueError(f"sharing block 0's attention needs a power-of-two number of query heads per KV head, "
                             f"not {group}")
        self.window_stride = window_stride
        if attention is not None and group % attention.stack:
            raise ValueError(f"attention tiles stacking {attention.stack} query heads: a KV head has {group}")
        self.attention_config = attention
        self.first_attention_warps = FIRST_ATTENTION_WARPS
        q_dim, kv_dim = shape.num_heads * head_dim, shape.num_kv_heads * head_dim
        order = rope_pair_order(head_dim)
        q_rows = (torch.arange(shape.num_heads)[:, None] * head_dim + order[None, :]).reshape(-1)
        k_rows = q_dim + (torch.arange(shape.num_kv_heads)[:, None] * head_dim + order[None, :]).reshape(-1)
        v_rows = q_dim + kv_dim + torch.arange(kv_dim)
        permutation = torch.cat((q_rows, k_rows, v_rows)).to(model.tok_emb.weight.device)
        self.q_dim, self.kv_dim = q_dim, kv_dim
        self.blocks = []
        for block in model.blocks:
            as_f32 = lambda p: p.detach().to(self.dtype).float().contiguous()  # the model rounds these to bf16
            self.blocks.append(dict(
                qkv=block.attn.qkv.weight.detach()[permutation].contiguous(),
                q_gain=as_f32(block.attn.q_gain), proj=block.attn.proj.weight.detach().contiguous(),
                fc=block.fc.weight.detach().contiguous(), down=block.down.weight.detach().contiguous(),
                attn_scale=as_f32(block.attn_scale), mlp_scale=as_f32(block.mlp_scale),
                mix=as_f32(block.resid_mix).reshape(-1),
            ))
        self.skip_weights = [w.detach().to(self.dtype).float().contiguous() for w in model.skip_weights]
        # The model's own RoPE tables, rounded to its dtype as its forward rounds them.
        self.cos = model.cos.to(self.dtype).float().contiguous()
        self.sin = model.sin.to(self.dtype).float().contiguous()
        self.emb = model.tok_emb.weight.detach().contiguous()
        # Tables by token id, from the embed kernel's outputs for every id (so the same values bit for bit):
        # - first_qkv_table: block 0's input depends on the token only, so its qkv product (with the row
        #   scale) is computed once per id (first_qkv_kernel gathers it and does the rest of the epilogue);
        # - x0_table: with the Gluon residual's x0_from_ids its epilogue reads x0 rows from here (1 MB, in L2)
        #   instead of the batch's [rows, dim] x0 from HBM.
        self.first_qkv_table = self.x0_table = None
        wants_x0 = any(getattr(config, "x0_from_ids", False) for config in self.gluon_configs.values())
        wants_qkv = first_block_table and len(self.blocks) > 1
        if wants_x0 or wants_qkv:
            every_x0, every_mixed, every_ss = self._embed(torch.arange(self.vocab_size, device=self.emb.device),
                                                          self.blocks[0]["mix"])
            if wants_qkv:
                self.first_qkv_table = self._qkv(every_mixed, every_ss, self.blocks[0]["qkv"], 0, 0,
                                                 self.blocks[0]["q_gain"], 1, 0)[1]
            if wants_x0:
                self.x0_table = every_x0

    # -- the kernels, one call each ---------------------------------------------------------------

    def _embed(self, ids: Tensor, mix: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        rows, dim = ids.numel(), self.shape.model_dim
        x0 = torch.empty(rows, dim, dtype=self.dtype, device=ids.device)
        mixed = torch.empty_like(x0)
        ss = torch.empty(rows, self.parts, dtype=torch.float32, device=ids.device)
        embed_kernel[(triton.cdiv(rows, EMBED_BLOCK_M),)](
            ids.reshape(-1), self.emb, x0, mixed, ss, mix, rows, self.eps, D=dim, PARTS=self.parts,
            CHUNK=SS_CHUNK, BM=EMBED_BLOCK_M, OUT_DTYPE=self.out_dtype, num_warps=8)
        return x0, mixed, ss

    def _qkv(self, x: Tensor, ss: Tensor, weight: Tensor, q_cols: int, k_cols: int, gain: Tensor,
             rows_per_window: int, pos_offset: int) -> tuple[Tensor | None, Tensor | None]:
        """(q [rows, q_cols], k and v [rows, cols - q_cols]); either is None when it has no columns."""
        if "qkv" in self.gluon_configs:
            return self._ws.ws_qkv(x, ss, weight, self.gluon_configs["qkv"], q_cols=q_cols, k_cols=k_cols,
                                   head_dim=self.shape.head_dim, gain=gain, cos=self.cos, sin=self.sin,
                                   rows_per_window=rows_per_window, pos_offset=pos_offset, eps=self.eps)
        config = self.configs["qkv"]
        if config.programs_per_sm:
            raise ValueError("the qkv kernel runs one tile per program (see qkv_kernel)")
        rows, cols = x.shape[0], weight.shape[0]
        bm, bn, bk = config.block_m, config.block_n, config.block_k
        if q_cols % bn or k_cols % bn or cols % bn:
            raise ValueError(f"qkv tiles of {bn} columns would straddle q ({q_cols}), k ({k_cols}) and v")
        q = torch.empty(rows, q_cols, dtype=self.dtype, device=x.device) if q_cols else None
        kv = torch.empty(rows, cols - q_cols, dtype=self.dtype, device=x.device) if cols > q_cols else None
        q_desc, kv_desc = (_desc(t if t is not None else (q if kv is None else kv), (bm, bn)) for t in (q, kv))
        qkv_kernel[_grid(rows, cols, config, x.device)](
            _desc(x, (bm, bk)), _desc(weight, (bn, bk)), q_desc, kv_desc, ss, self.cos, self.sin, gain,
            rows, rows_per_window, pos_offset, self.eps, D=self.shape.model_dim, N=cols, Q_COLS=q_cols,
            K_COLS=k_cols, HEAD_DIM=self.shape.head_dim, PARTS=self.parts, OUT_DTYPE=self.out_dtype,
            **launch_options(config, persistent_mode=False))
        return q, kv

    def _first_qkv(self, ids: Tensor, length: int) -> tuple[Tensor, Tensor]:
        """Block 0's (q, k and v) for windows of `length` tokens, from first_qkv_table by token id."""
        rows, head_dim = ids.numel(), self.shape.head_dim
        cols = self.first_qkv_table.shape[1]
        q = torch.empty(rows, self.q_dim, dtype=self.dtype, device=ids.device)
        kv = torch.empty(rows, cols - self.q_dim, dtype=self.dtype, device=ids.device)
        first_qkv_kernel[(triton.cdiv(rows, FIRST_QKV_BLOCK_M), cols // head_dim)](
            ids.reshape(-1), self.first_qkv_table, self.cos, self.sin, self.blocks[0]["q_gain"], q, kv, rows, length,
            self.eps, N=cols, Q_COLS=self.q_dim, K_COLS=self.kv_dim, HEAD_DIM=head_dim, BM=FIRST_QKV_BLOCK_M,
            OUT_DTYPE=self.out_dtype, num_warps=4)
        return q, kv

    def _first_attention_per_window(self, ids: Tensor) -> Tensor:
        """Block 0's attention output [rows, q_dim] one window at a time: q, k, v from the table by token id
        (first_qkv_kernel), then SDPA's causal attention per window."""
        batch, length = ids.shape
        return self._attention(*self._first_qkv(ids, length), batch, length, length)

    def takes_first_attention(self, length: int) -> bool:
        """Whether block 0's attention of windows of `length` tokens runs in first_attention_kernel (shared
        across windows wherever a batch's rows are consecutive windows window_stride apart): windows of a
        whole number of strides, more than one."""
        stride = self.window_stride
        return bool(stride) and self.first_qkv_table is not None and length % stride == 0 and length > stride

    def consecutive_windows(self, ids: Tensor) -> Tensor:
        """On the device, without waiting for it: whether each row is the one before moved on by window_stride."""
        stride = self.window_stride
        return ids[1:, : ids.shape[1] - stride].eq(ids[:-1, stride:]).all()

    def _first_attention(self, ids: Tensor) -> Tensor:
        """Block 0's attention output [rows, q_dim] by first_attention_kernel (takes_first_attention)."""
        (batch, length), stride, ids = ids.shape, self.window_stride, ids.contiguous()
        stream = torch.cat((ids[0], ids[1:, length - stride :].reshape(-1)))  # what consecutive windows cover
        y = torch.empty(batch * length, self.q_dim, dtype=self.dtype, device=ids.device)
        head_dim, kv_heads = self.shape.head_dim, self.shape.num_kv_heads
        first_attention_kernel[(batch * (length // stride), kv_heads)](
            stream, ids, self.consecutive_windows(ids), self.first_qkv_table, self.cos, self.sin,
            self.blocks[0]["q_gain"], y, batch, self.eps, _log2_softmax_scale(head_dim),
            N=self.first_qkv_table.shape[1], Q_COLS=self.q_dim, K_COLS=self.kv_dim, HEAD_DIM=head_dim,
            GROUP=self.shape.num_heads // kv_heads, STRIDE=stride, WINDOW_BLOCKS=length // stride,
            OUT_DTYPE=self.out_dtype, num_warps=self.first_attention_warps)
        return y

    def _residual(self, a: Tensor, weight: Tensor, res: Tensor, scale: Tensor, *, write_ss: bool,
                  extra: Tensor | None = None, skip: int = 0, skip_source: Tensor | None = None,
                  skip_w: Tensor | None = None, x0: Tensor | None = None, ids: Tensor | None = None,
                  mix: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        if "residual" in self.gluon_configs:
            # the kind's own tiles where gluon_configs has them (ws_gemm.CONFIGS), the residual's otherwise
            kind = "residual_skip" if skip == 1 else "residual" if mix is not None else "residual_attn"
            config = self.gluon_configs.get(kind, self.gluon_configs["residual"])
            x0_ids = None
            if config.x0_from_ids and mix is not None:
                x0, x0_ids = self.x0_table, ids
            return self._ws.ws_product(a, weight, config, epilogue=self._ws.RESIDUAL, res=res,
                                       scale=scale, write_ss=write_ss, extra=extra, skip=skip, skip_source=skip_source,
                                       skip_w=skip_w, x0=x0, x0_ids=x0_ids, mix=mix)
        config = self.configs["residual"]
        rows, cols = a.shape[0], weight.shape[0]
        bm, bn, bk = config.block_m, config.block_n, config.block_k
        out = torch.empty(rows, cols, dtype=self.dtype, device=a.device)
        ss = torch.empty(rows, self.parts, dtype=torch.float32, device=a.device) if write_ss else scale
        tile = lambda t: _desc(t if t is not None else out, (bm, bn))
        residual_kernel[_grid(rows, cols, config, a.device)](
            _desc(a, (bm, bk)), _desc(weight, (bn, bk)), tile(res), scale, tile(out), ss, tile(extra),
            tile(skip_source), skip_w if skip_w is not None else scale, tile(x0), mix if mix is not None else scale,
            res, x0 if x0 is not None else out, skip_source if skip_source is not None else out,  # for L2 prefetch
            rows, N=cols, K=a.shape[1], PARTS=self.parts, STORE_EXTRA=extra is not None, SKIP=skip, MIX=mix is not None,
            WRITE_SS=write_ss, CHUNK=SS_CHUNK, OUT_DTYPE=self.out_dtype, **launch_options(config))
        return out, (ss if write_ss else None)

    def _relu2(self, x: Tensor, ss: Tensor, weight: Tensor) -> Tensor:
        if "relu2" in self.gluon_configs:
            return self._ws.ws_product(x, weight, self.gluon_configs["relu2"], epilogue=self._ws.RELU2, ss=ss,
                                       eps=self.eps)[0]
        config = self.configs["relu2"]
        rows, cols = x.shape[0], weight.shape[0]
        bm, bn, bk = config.block_m, config.block_n, config.block_k
        out = torch.empty(rows, cols, dtype=self.dtype, device=x.device)
        relu2_kernel[_grid(rows, cols, config, x.device)](
            _desc(x, (bm, bk)), _desc(weight, (bn, bk)), _desc(out, (bm, bn)), ss, rows, self.eps,
            D=self.shape.model_dim, N=cols, PARTS=self.parts, OUT_DTYPE=self.out_dtype, **launch_options(config))
        return out

    # -- the forward ------------------------------------------------------------------------------

    def attention_tiles(self, length: int, n: int) -> AttentionConfig | None:
        """attention_kernel's tiles for the last n queries of windows of `length` tokens, or None where
        SDPA takes them: no attention config, every query of the window without full_windows, or windows
        that its key blocks do not divide (the evaluator's shorter last window). The query block is cut to n
        where n is smaller (the last block's queries)."""
        config = self.attention_config
        if config is None or length % config.block_k or (n == length and not config.full_windows):
            return None
        block_q = min(config.block_q, n)
        if n % block_q or not _power_of_two(block_q) or block_q < 16:
            return None
        return replace(config, block_q=block_q)

    def _attention(self, q: Tensor, kv: Tensor, batch: int, length: int, n: int) -> Tensor:
        tiles = self.attention_tiles(length, n)
        if tiles is not None:
            return self._attention_by_kernel(q, kv, batch, length, n, tiles)
        return self._attention_by_sdpa(q, kv, batch, length, n)

    def _attention_by_kernel(self, q: Tensor, kv: Tensor, batch: int, length: int, n: int,
                             tiles: AttentionConfig) -> Tensor:
        shape = self.shape
        if not (q.is_contiguous() and kv.is_contiguous()):
            raise ValueError("attention_kernel reads q and kv as dense row-major [rows, columns] tensors")
        y = torch.empty_like(q)
        kv_desc = _desc(kv, (tiles.block_k, shape.head_dim)) if tiles.tma else kv
        attention_kernel[(batch * (n // tiles.block_q), shape.num_heads // tiles.stack)](
            q, kv, kv_desc, y, batch, length, _log2_softmax_scale(shape.head_dim), QUERIES=n, Q_COLS=self.q_dim,
            K_COLS=self.kv_dim, HEAD_DIM=shape.head_dim, HEADS_PER_KV=shape.num_heads // shape.num_kv_heads,
            STACK=tiles.stack, BLOCK_Q=tiles.block_q, BLOCK_K=tiles.block_k, OUT_DTYPE=self.out_dtype, TMA=tiles.tma,
            num_warps=tiles.num_warps, num_stages=tiles.num_stages)
        return y

    def _attention_by_sdpa(self, q: Tensor, kv: Tensor, batch: int, length: int, n: int) -> Tensor:
        shape = self.shape
        heads, kv_heads, head_dim = shape.num_heads, shape.num_kv_heads, shape.head_dim
        q = q.view(batch, n, heads, head_dim).transpose(1, 2)
        k = kv[:, : self.kv_dim].view(batch, length, kv_heads, head_dim).transpose(1, 2)
        v = kv[:, self.kv_dim :].view(batch, length, kv_heads, head_dim).transpose(1, 2)
        if n == length:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
        else:  # the last n queries: query i sees keys 0 .. length - n + i
            visible = torch.ones(n, length, dtype=torch.bool, device=q.device).tril(diagonal=length - n)
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=visible, enable_gqa=True)
        return y.transpose(1, 2).reshape(batch * n, heads * head_dim)

    def forward_logits(self, input_ids: Tensor, last_n: int | None = None) -> Tensor:
        batch, length = input_ids.shape
        if length > self.shape.seq_len:
            raise ValueError(f"windows of {length} tokens exceed the model's {self.shape.seq_len}")
        n = length if last_n is None else last_n
        if not 1 <= n <= length:
            raise ValueError(f"last_n must be in [1, {length}], got {last_n}")
        dim, blocks = self.shape.model_dim, self.blocks
        num_encoder = self.model.num_encoder
        x0, x, ss = self._embed(input_ids, blocks[0]["mix"])
        first_y = self._first_attention(input_ids) if self.takes_first_attention(length) else None
        skips: list[Tensor] = []
        for index, params in enumerate(blocks):
            last = index == len(blocks) - 1
            if not last:
                if index == 0 and first_y is not None:
                    y = first_y
                elif index == 0 and self.first_qkv_table is not None:
                    y = self._first_attention_per_window(input_ids)
                else:
                    q, kv = self._qkv(x, ss, params["qkv"], self.q_dim, self.kv_dim, params["q_gain"], length, 0)
                    y = self._attention(q, kv, batch, length, length)
                residual = x
            else:  # keys and values for every position, queries for the last n
                _, kv = self._qkv(x, ss, params["qkv"][self.q_dim :], 0, self.kv_dim, params["q_gain"], length, 0)
                residual = x.view(batch, length, dim)[:, length - n :].reshape(batch * n, dim)
                rows_ss = ss.view(batch, length, self.parts)[:, length - n :].reshape(batch * n, self.parts)
                q, _ = self._qkv(residual, rows_ss, params["qkv"][: self.q_dim], self.q_dim, 0, params["q_gain"], n,
                                 length - n)
                y = self._attention(q, kv, batch, length, n)
            x_attn, ss_attn = self._residual(y, params["proj"], residual, params["attn_scale"], write_ss=True)
            hidden = self._relu2(x_attn, ss_attn, params["fc"])
            if last:
                x, _ = self._residual(hidden, params["down"], x_attn, params["mlp_scale"], write_ss=False)
                break
            following = index + 1
            is_source = index < num_encoder
            pops = following >= num_encoder and (is_source or bool(skips))
            # The next block pops this block's own output (2, kept in registers) or a stored one (1).
            skip_mode = 0 if not pops else 2 if is_source else 1
            skip_source = skips.pop() if skip_mode == 1 else None
            store_extra = is_source and not pops
            extra = torch.empty_like(x_attn) if store_extra else None
            x, ss = self._residual(
                hidden, params["down"], x_attn, params["mlp_scale"], write_ss=True, extra=extra, skip=skip_mode,
                skip_source=skip_source, skip_w=self.skip_weights[following - num_encoder] if pops else None,
                x0=x0, ids=input_ids.reshape(-1), mix=blocks[following]["mix"])
            if store_extra:
                skips.append(extra)
        h = F.rms_norm(x, (dim,))
        logits = F.linear(h, self.emb).float()
        softcap = self.shape.logit_softcap
        return (softcap * torch.tanh(logits / softcap)).view(batch, n, -1)


def tune(fused: FusedBaselineGPT, batch: int, candidates: list[TileConfig]) -> dict[str, dict[str, float]]:
    """Time every candidate for each kernel at this batch on the device (median of do_bench) and keep
    the fastest in `fused.configs`; returns {kernel: {config: milliseconds}}."""
    from triton.testing import do_bench

    shape, device = fused.shape, fused.emb.device
    rows = batch * shape.seq_len
    ids = torch.randint(0, shape.vocab_size, (batch, shape.seq_len), device=device)
    params = fused.blocks[1]
    x0, x, ss = fused._embed(ids, params["mix"])
    hidden = torch.randn(rows, params["fc"].shape[0], device=device, dtype=fused.dtype).abs_()
    runs = {
        "qkv": lambda: fused._qkv(x, ss, params["qkv"], fused.q_dim, fused.kv_dim, params["q_gain"], shape.seq_len, 0),
        "residual": lambda: fused._residual(hidden, params["down"], x, params["mlp_scale"], write_ss=True, x0=x0,
                                            mix=params["mix"]),
        "relu2": lambda: fused._relu2(x, ss, params["fc"]),
    }
    # The bare product of each shape through cuBLAS: what the epilogues cost on top of a product.
    products = {"qkv": (x, params["qkv"]), "residual": (hidden, params["down"]), "relu2": (x, params["fc"])}
    timings: dict[str, dict[str, float]] = {}
    for name, run in runs.items():
        if name in fused.gluon_configs:  # a Gluon product: its configuration is fused.gluon_configs'
            continue
        a, w = products[name]
        timings[name] = {"cublas_product_only": do_bench(lambda: F.linear(a, w), warmup=25, rep=100, return_mode="median")}
        best = None
        for config in candidates:
            if not applies(name, config):
                continue
            fused.configs[name] = config
            try:
                ms = do_bench(run, warmup=25, rep=100, return_mode="median")
            except Exception as error:  # a config the compiler rejects (shared memory, registers)
                timings[name][str(config)] = float("nan")
                print(f"  {name} {config}: failed ({type(error).__name__}: {str(error)[:80]})")
                continue
            timings[name][str(config)] = ms
            print(f"  {name:>8} {config}: {ms:.3f} ms (cuBLAS product alone {timings[name]['cublas_product_only']:.3f})")
            if best is None or ms < best[0]:
                best = (ms, config)
        if best is None:
            raise RuntimeError(f"no tile configuration compiled for the {name} kernel")
        fused.configs[name] = best[1]
        # The chosen tiles' bare product: the epilogue's cost is the difference.
        bare = do_bench(lambda: triton_product(a, w, best[1]), warmup=25, rep=100, return_mode="median")
        timings[name]["triton_product_only_chosen_tiles"] = bare
        print(f"  {name:>8} chosen {best[1]}: {best[0]:.3f} ms; its bare product {bare:.3f} ms")
    return timings


def tune_candidates() -> list[TileConfig]:
    """Tile shapes, each with every way of fetching the epilogue's operands (`applies` drops the pairs
    a kernel cannot take). Two H200 runs (bench/results/eval_throughput_nvidia-h200_fused_model_
    {first,second}_tuning.json) ruled out 4 stages, BK = 128, a 64-row tile with 256 columns, and two
    4-warp persistent programs per SM (0.7-0.9 ms where the best took 0.53-0.68); what is left is the
    best two or three of every kernel there, plus 256-row tiles at 2 stages (96 KiB of shared memory
    instead of 144: two programs per SM). The third run (..._third_tuning.json) found neither those nor
    the L2 prefetch faster on its H200; they stay candidates for GPUs with other memory systems."""
    shapes = (
        (128, 128, 64, 8, 3), (128, 128, 64, 4, 3), (128, 256, 64, 8, 3), (256, 128, 64, 8, 3),
        (256, 128, 64, 8, 2), (128, 128, 64, 4, 2), (128, 64, 64, 4, 3),
        # persistent: the next tile's loads can overlap this tile's epilogue
        (128, 128, 64, 8, 3, 1), (128, 256, 64, 8, 3, 1))
    return [TileConfig(*values, prefetch=prefetch) for values in shapes for prefetch in PREFETCH_MODES]


__all__ = ["FusedBaselineGPT", "TileConfig", "CONFIGS", "PERSISTENT_KERNELS", "PREFETCH_MODES",
           "SMALL_MODEL_CONFIGS", "SMALL_MODEL_PERSISTENT_CONFIGS", "SMALL_MODEL_SHAPE", "applies", "launch_options",
           "persistent", "triton_product", "tune", "tune_candidates", "rope_pair_order"]
