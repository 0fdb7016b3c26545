"""Warp-specialised products for Hopper, written in Gluon: the experiment the fused kernels' profile asked for.

bench/fused_model.py's Triton kernels lose to cuBLAS in two places (README, "fused kernels"): their main
loop is 15-27 % slower, and nothing overlaps their epilogue with the next tile's product. On Hopper both
are what warp specialisation is for. Each program here is persistent (one per SM) and splits its warps
into three partitions that talk through mbarriers:

- a loader warp streams the A and W tiles of every tile this program owns through a ring of shared
  memory stages with TMA;
- two consumer warpgroups take this program's tiles in turn (even, odd); each runs the wgmma main loop
  of its tile and then its epilogue, so that while one is in its epilogue the other keeps the tensor
  cores busy (the "ping-pong" schedule). The main loops take turns through a pair of mbarriers, in
  the order the loader fills the ring (see _main_loop for why they must).
  With consumers = 1 a single warpgroup takes every tile and only the loads run ahead.

Epilogues (EPILOGUE), each fused_model's, rounded at the same places: 0, the bare product (for timing
against cuBLAS and Triton); 1, relu2: relu(rsqrt(mean(x^2) + eps) * (x @ W^T))^2 with the row scale from
the partial sums of squares; 2, residual: res + scale * (a @ W^T) with the optional skip add, residual
mix and sums of squares; 3, qkv: the row scale, then per head the q/k RMSNorm, RoPE and query gain
(ws_qkv). Each consumer's tile is BM x BN with BM = 64 or 128 (one warpgroup: 64 or 128 fp32
accumulator registers a thread at BN = 128, with the epilogue's operands beside them; the compiled
kernels spill nothing: bench/ws_gemm_report.py). The residual and qkv epilogues pass the product
through the consumer's staging buffer into a row-major layout, where the tiles they read load as
16-byte vectors; the residual issues those loads together once the accumulator is in shared memory, can
ask for them in L2 when the tile's main loop starts (WsConfig.prefetch_l2), and can read x0 rows from a
[vocab, N] table by the rows' token ids instead of an [M, N] tensor (WsConfig.x0_from_ids).

Gluon compiles for sm_90a only (no interpreter): the CPU tests compile the kernels offline and the GPU
tests run them. Written for this benchmark; it is not the challenge's code.
"""

import functools
from dataclasses import dataclass, replace

import torch
from torch import Tensor

import triton
from triton.language.core import _aggregate as aggregate
from triton.runtime.jit import constexpr_function
from triton.experimental import gluon
from triton.experimental.gluon import language as gl
from triton.experimental.gluon.nvidia.hopper import TensorDescriptor
from triton.experimental.gluon.language.nvidia.hopper import (fence_async_shared, mbarrier, tma, warpgroup_mma,
                                                              warpgroup_mma_wait)

# TMA copies by their names in this Triton: Triton 3.6 (the device image's) has async_copy_*; 3.9 (what
# CI installs) renamed them async_load / async_store and refuses the old names.
_tma_load = getattr(tma, "async_load", None) or tma.async_copy_global_to_shared
_tma_store = getattr(tma, "async_store", None) or tma.async_copy_shared_to_global

BARE, RELU2, RESIDUAL, QKV = 0, 1, 2, 3  # EPILOGUE
SS_CHUNK = 128  # columns per partial sum of squares, as in fused_model


@dataclass(frozen=True)
class WsConfig:
    block_m: int = 64  # rows of one consumer's tile (one warpgroup)
    block_n: int = 128
    block_k: int = 64
    stages: int = 4  # A/W tiles in flight in the ring
    consumer_regs: int = 232  # registers a thread in each consumer warpgroup (setmaxnreg)
    loader_regs: int = 40
    consumers: int = 2  # 2: ping-pong between two consumer warpgroups; 1: one, with the loader running ahead
    # RESIDUAL only: ask for the tile's residual / skip / x0 tiles to be brought into L2 when its main loop
    # starts (the epilogue then waits on L2, not HBM)
    prefetch_l2: bool = False
    # RESIDUAL with a mix only: read x0 rows from a [vocab, N] table by the rows' token ids (1 MB, stays in
    # L2) instead of the [M, N] x0 tensor from HBM; the caller passes x0_ids
    x0_from_ids: bool = False

    def __post_init__(self) -> None:
        if self.block_m not in (64, 128):
            raise ValueError(f"a consumer's tile has 64 or 128 rows (one warpgroup's wgmma, once or twice), not "
                             f"{self.block_m}")
        if self.block_n not in (16, 32, 64, 128, 256):  # a wgmma's N, and a power of two for gl.arange
            raise ValueError(f"block_n must be a power of two in [16, 256], not {self.block_n}")
        if self.consumers not in (1, 2):
            raise ValueError(f"consumers must be 1 or 2, not {self.consumers}")
        # A warpgroup a consumer and one for the loader's warp (registers are allocated by warpgroup): the
        # register file holds 64 K.
        if 128 * (self.consumers * self.consumer_regs + self.loader_regs) > 65536:
            raise ValueError(f"{self.consumers} consumer warpgroup(s) of {self.consumer_regs} registers a thread and "
                             f"the loader's of {self.loader_regs} do not fit in 64 K registers")

    @property
    def launch_regs(self) -> int:
        """maxnreg at launch: the warpgroups' average, which setmaxnreg then redistributes."""
        return (self.consumers * self.consumer_regs + self.loader_regs) // (self.consumers + 1) // 8 * 8


# The defaults for bench/fused_model.py's kernels, from H200 calls of bench/ws_gemm_bench.py (median of
# do_bench on a batch's 262,144 rows; bench/results/ws_gemm_nvidia-h200{_third,}.json): 128 x 128 tiles with
# ping-pong consumers everywhere but the residual that adds a stored U-net skip, where 64 x 128 tiles ran
# 0.67-0.69 ms against 0.75-0.81; 5 stages for qkv and relu2 (0.44 and 0.42 ms against 0.48 and 0.47 at 4),
# 4 for the residuals (0.55-0.58 against 0.58-0.60 ms; with the extra output 0.61 against 0.64; after
# attention 0.29 against 0.30-0.32, though in the forward's launch list 0.28 against 0.27). The residual keys
# are fused_model's three kinds of residual launch: "residual" (after the MLP, with the residual mix),
# "residual_skip" (that, adding a stored skip) and "residual_attn" (after attention, and the last block's
# MLP: no mix).
_SQUARE = WsConfig(block_m=128, block_n=128, stages=5)
CONFIGS = {"qkv": _SQUARE, "relu2": _SQUARE, "residual": replace(_SQUARE, stages=4),
           "residual_skip": replace(_SQUARE, block_m=64), "residual_attn": replace(_SQUARE, stages=4)}
RESIDUAL_KINDS = ("residual", "residual_skip", "residual_attn")

# Where the residual epilogue's operands come from (WsConfig.prefetch_l2, x0_from_ids), by name. The same
# calls timed x0 from the table ("gather") 2-5 % faster than from the batch's x0 tensor; the L2 prefetch
# gained nothing beside it (0.55 against 0.56 ms without a skip, 0.82 against 0.78 with one).
RESIDUAL_OPERANDS = {"base": {}, "prefetch": dict(prefetch_l2=True), "gather": dict(x0_from_ids=True),
                     "both": dict(prefetch_l2=True, x0_from_ids=True)}
DEFAULT_RESIDUAL_OPERANDS = "gather"


def configs_with(residual_operands: str = DEFAULT_RESIDUAL_OPERANDS, names=None) -> dict[str, WsConfig]:
    """CONFIGS for the kernels `names` ("qkv", "relu2", "residual": all when None; "residual" brings its three
    kinds), with the residuals' operands fetched as RESIDUAL_OPERANDS[residual_operands] says."""
    if residual_operands not in RESIDUAL_OPERANDS:
        raise ValueError(f"residual operands must be one of {sorted(RESIDUAL_OPERANDS)}, not {residual_operands!r}")
    wanted = lambda name: names is None or name in names or (name in RESIDUAL_KINDS and "residual" in names)
    return {name: replace(config, **RESIDUAL_OPERANDS[residual_operands]) if name in RESIDUAL_KINDS else config
            for name, config in CONFIGS.items() if wanted(name)}


@constexpr_function
def _row_major_layout(block_n):
    """4 warps over a [rows, block_n] bf16 tile: 8 consecutive elements (16 bytes) a thread, whole rows a warp."""
    threads_n = min(32, block_n // 8)
    return gl.BlockedLayout([1, 8], [32 // threads_n, threads_n], [4, 1], [1, 0])


@gluon.jit
def _tile_offsets(tile, N: gl.constexpr, BM: gl.constexpr, BN: gl.constexpr):
    # Consecutive tiles are the N tiles of one row block: its A rows come from L2 the second time.
    return (tile // (N // BN)) * BM, (tile % (N // BN)) * BN


@gluon.jit
def _loader(a_desc, w_desc, a_bufs, w_bufs, ready, empty, M, N: gl.constexpr, K: gl.constexpr, BM: gl.constexpr,
            BN: gl.constexpr, BK: gl.constexpr, STAGES: gl.constexpr):
    tiles = gl.cdiv(M, BM) * (N // BN)
    step = 0
    for tile in range(gl.program_id(0), tiles, gl.num_programs(0)):
        off_m, off_n = _tile_offsets(tile, N, BM, BN)
        for k in range(0, K, BK):
            slot = step % STAGES
            # the slot's previous occupant released (the barriers start as if phase 1 had completed)
            mbarrier.wait(empty.index(slot), ((step // STAGES) & 1) ^ 1)
            mbarrier.expect(ready.index(slot), a_desc.block_type.nbytes + w_desc.block_type.nbytes)
            _tma_load(a_desc, [off_m, k], ready.index(slot), a_bufs.index(slot))
            _tma_load(w_desc, [off_n, k], ready.index(slot), w_bufs.index(slot))
            step += 1


@gluon.jit
def _main_loop(a_bufs, w_bufs, ready, empty, order, which, turn, first_step, K: gl.constexpr, BM: gl.constexpr,
               BN: gl.constexpr, BK: gl.constexpr, STAGES: gl.constexpr, CONSUMERS: gl.constexpr,
               layout: gl.constexpr):
    """fp32 [BM, BN] tile of A @ W^T from the ring, releasing each stage once its wgmma is done.

    With two consumers the main loops take turns (order[c]: consumer c may start its turn-th tile):
    an mbarrier's wait tells phases apart by parity only, so a consumer must not wait on a stage two
    fills ahead of the last wait on it, which it would if it ran ahead of the other consumer's loop."""
    if CONSUMERS == 2:
        # consumer 0's first turn is free (a new barrier reads as if its phase 1 had completed)
        mbarrier.wait(order.index(which), (turn & 1) ^ (1 - which))
    acc = gl.zeros((BM, BN), dtype=gl.float32, layout=layout)
    for kk in range(K // BK):
        step = first_step + kk
        slot = step % STAGES
        mbarrier.wait(ready.index(slot), (step // STAGES) & 1)
        acc = warpgroup_mma(a_bufs.index(slot), w_bufs.index(slot).permute((1, 0)), acc, is_async=True)
        # at most this wgmma in flight: the previous stage can be refilled
        acc = warpgroup_mma_wait(num_outstanding=1, deps=(acc, ))
        mbarrier.arrive(empty.index((step + STAGES - 1) % STAGES), count=1, pred=kk > 0)
    if CONSUMERS == 2:  # every stage of this tile waited for: the other consumer's turn
        mbarrier.arrive(order.index(1 - which), count=1)
    acc = warpgroup_mma_wait(num_outstanding=0, deps=(acc, ))
    mbarrier.arrive(empty.index((first_step + K // BK - 1) % STAGES), count=1)
    return acc


@gluon.jit
def _store_tile(desc, buf, values, off_m, off_n):
    """values -> this consumer's staging buffer -> TMA store (the buffer's previous store waited for)."""
    tma.store_wait(pendings=0)
    buf.store(values)
    fence_async_shared()
    _tma_store(desc, [off_m, off_n], buf)


@aggregate
class Ring:
    """The shared memory the partitions share: the A/W stages with their ready/empty mbarriers, the two
    consumers' turn barriers (order) and their output staging buffers (out_bufs)."""
    a_bufs: gl.shared_memory_descriptor
    w_bufs: gl.shared_memory_descriptor
    ready: gl.shared_memory_descriptor
    empty: gl.shared_memory_descriptor
    order: gl.shared_memory_descriptor
    out_bufs: gl.shared_memory_descriptor
    STAGES: gl.constexpr

    @constexpr_function  # Triton 3.6 refuses a plain function referenced from a kernel
    def __init__(self, a_bufs, w_bufs, ready, empty, order, out_bufs, STAGES):
        self.a_bufs, self.w_bufs, self.ready, self.empty = a_bufs, w_bufs, ready, empty
        self.order, self.out_bufs, self.STAGES = order, out_bufs, gl.constexpr(STAGES)


@aggregate
class Epilogue:
    """What an epilogue reads and writes (pointers the variant does not use point at the output)."""
    out_desc: tma.tensor_descriptor  # the output; for QKV the queries
    extra_desc: tma.tensor_descriptor  # RESIDUAL with STORE_EXTRA: the U-net skip source; QKV: keys, values
    ss_in_ptr: gl.tensor  # RELU2, QKV: the input's partial sums of squares [M, PARTS]
    ss_out_ptr: gl.tensor  # RESIDUAL with WRITE_SS: the output's
    res_ptr: gl.tensor
    scale_ptr: gl.tensor
    skip_ptr: gl.tensor
    skip_w_ptr: gl.tensor
    x0_ptr: gl.tensor  # the x0 tensor [M, N], or with X0_GATHER the x0 table [vocab, N]
    x0_ids_ptr: gl.tensor  # X0_GATHER: the rows' token ids [M]
    mix_ptr: gl.tensor
    cos_ptr: gl.tensor  # QKV: the RoPE tables [positions, HEAD_DIM / 2] and the query gain [heads]
    sin_ptr: gl.tensor
    gain_ptr: gl.tensor
    M: gl.tensor
    eps: gl.tensor
    rows_per_window: gl.tensor  # QKV: a row's position is row % rows_per_window + pos_offset
    pos_offset: gl.tensor
    N: gl.constexpr
    K: gl.constexpr
    EPILOGUE: gl.constexpr
    D: gl.constexpr  # the width the input RMSNorm averages over
    PARTS: gl.constexpr
    STORE_EXTRA: gl.constexpr
    SKIP: gl.constexpr
    MIX: gl.constexpr
    WRITE_SS: gl.constexpr
    Q_COLS: gl.constexpr
    K_COLS: gl.constexpr
    HEAD_DIM: gl.constexpr
    X0_GATHER: gl.constexpr
    PREFETCH: gl.constexpr

    @constexpr_function
    def __init__(self, out_desc, extra_desc, ss_in_ptr, ss_out_ptr, res_ptr, scale_ptr, skip_ptr, skip_w_ptr,
                 x0_ptr, x0_ids_ptr, mix_ptr, cos_ptr, sin_ptr, gain_ptr, M, eps, rows_per_window, pos_offset, N, K,
                 EPILOGUE, D, PARTS, STORE_EXTRA, SKIP, MIX, WRITE_SS, Q_COLS, K_COLS, HEAD_DIM, X0_GATHER, PREFETCH):
        self.out_desc, self.extra_desc, self.ss_in_ptr, self.ss_out_ptr = out_desc, extra_desc, ss_in_ptr, ss_out_ptr
        self.res_ptr, self.scale_ptr, self.skip_ptr, self.skip_w_ptr = res_ptr, scale_ptr, skip_ptr, skip_w_ptr
        self.x0_ptr, self.x0_ids_ptr, self.mix_ptr = x0_ptr, x0_ids_ptr, mix_ptr
        self.cos_ptr, self.sin_ptr, self.gain_ptr = cos_ptr, sin_ptr, gain_ptr
        self.M, self.eps, self.rows_per_window, self.pos_offset = M, eps, rows_per_window, pos_offset
        constant = gl.constexpr  # (a constexpr_function receives the constants unwrapped)
        self.N, self.K, self.EPILOGUE, self.D, self.PARTS = constant(N), constant(K), constant(EPILOGUE), constant(D), \
            constant(PARTS)
        self.STORE_EXTRA, self.SKIP, self.MIX, self.WRITE_SS = constant(STORE_EXTRA), constant(SKIP), constant(MIX), \
            constant(WRITE_SS)
        self.Q_COLS, self.K_COLS, self.HEAD_DIM = constant(Q_COLS), constant(K_COLS), constant(HEAD_DIM)
        self.X0_GATHER, self.PREFETCH = constant(X0_GATHER), constant(PREFETCH)


@gluon.jit
def _row_scale(e, rows, mask, layout: gl.constexpr):
    """rsqrt(mean(x^2) + eps) of the input rows (the input RMSNorm), from their partial sums of squares."""
    parts = gl.load(e.ss_in_ptr + rows[:, None] * e.PARTS + gl.arange(0, e.PARTS, layout=layout)[None, :],
                    mask=mask, other=1.0)
    return gl.rsqrt(gl.sum(parts, axis=1) / e.D + e.eps)


@gluon.jit
def _x0_tile(e, rows, cols, in_range, tile_ptrs):
    """The x0 rows of this tile: from the x0 tensor, or (X0_GATHER) from the table by the rows' token ids."""
    if e.X0_GATHER:
        ids = gl.load(e.x0_ids_ptr + rows, mask=rows < e.M, other=0)
        return gl.load(e.x0_ptr + ids.to(gl.int64)[:, None] * e.N + cols[None, :], mask=in_range, other=0.0)
    else:
        return gl.load(e.x0_ptr + tile_ptrs, mask=in_range, other=0.0)


@gluon.jit
def _prefetch_l2(ptr, off_m, off_n, M, N: gl.constexpr, BM: gl.constexpr, BN: gl.constexpr):
    """One PTX L2 prefetch per 128-byte line of this [BM, BN] bf16 tile of a row-major [M, N] tensor (rows
    past M clamped to the last); a warpgroup's thread a row."""
    LINE: gl.constexpr = 64  # bf16 elements a line
    layout: gl.constexpr = gl.BlockedLayout([1, BN // LINE], [32, 1], [4, 1], [1, 0])
    rows = gl.minimum(off_m + gl.arange(0, BM, layout=gl.SliceLayout(1, layout)), M - 1)
    cols = off_n + gl.arange(0, BN // LINE, layout=gl.SliceLayout(0, layout)) * LINE
    gl.inline_asm_elementwise("prefetch.global.L2 [$1]; mov.u32 $0, 0;", "=r,l",
                              [ptr + rows[:, None].to(gl.int64) * N + cols[None, :]], dtype=gl.int32, is_pure=False,
                              pack=1)


@gluon.jit
def _prefetch_residual_operands(e, off_m, off_n, BM: gl.constexpr, BN: gl.constexpr):
    _prefetch_l2(e.res_ptr, off_m, off_n, e.M, e.N, BM, BN)
    if e.MIX:
        if e.SKIP == 1:
            _prefetch_l2(e.skip_ptr, off_m, off_n, e.M, e.N, BM, BN)
        if not e.X0_GATHER:
            _prefetch_l2(e.x0_ptr, off_m, off_n, e.M, e.N, BM, BN)


@gluon.jit
def _residual_epilogue(e, acc, out_buf, off_m, off_n, BM: gl.constexpr, BN: gl.constexpr):
    # The product goes through this consumer's staging buffer into a row-major layout, where the
    # residual, x0 and skip tiles load as 16-byte vectors of whole rows (in the wgmma layout a thread
    # holds pairs of columns: 4-byte loads, half sectors). Their loads are issued once the accumulator
    # is in shared memory (its registers free) and before the product is read back, all together: one
    # wait on memory a tile instead of one for the residual and another for the skip and x0.
    layout: gl.constexpr = _row_major_layout(BN)
    out_dtype: gl.constexpr = e.out_desc.dtype
    tma.store_wait(pendings=0)
    out_buf.store(acc.to(out_dtype))
    rows = off_m + gl.arange(0, BM, layout=gl.SliceLayout(1, layout))
    cols = off_n + gl.arange(0, BN, layout=gl.SliceLayout(0, layout))
    in_range = rows[:, None] < e.M
    tile_ptrs = rows[:, None] * e.N + cols[None, :]
    res = gl.load(e.res_ptr + tile_ptrs, mask=in_range, other=0.0)
    if e.MIX:
        x0 = _x0_tile(e, rows, cols, in_range, tile_ptrs)
        if e.SKIP == 1:
            skip = gl.load(e.skip_ptr + tile_ptrs, mask=in_range, other=0.0)
    product = out_buf.load(layout).to(gl.float32)
    x = (res.to(gl.float32) + gl.load(e.scale_ptr + cols)[None, :] * product).to(out_dtype)
    if e.STORE_EXTRA:
        _store_tile(e.extra_desc, out_buf, x, off_m, off_n)  # the staging buffer, twice: 227 KiB
    if e.MIX:
        xf = x.to(gl.float32)
        if e.SKIP == 1:
            xf = (xf + gl.load(e.skip_w_ptr + cols)[None, :] * skip.to(gl.float32)).to(out_dtype).to(gl.float32)
        elif e.SKIP == 2:
            xf = (xf + gl.load(e.skip_w_ptr + cols)[None, :] * xf).to(out_dtype).to(gl.float32)
        x = (gl.load(e.mix_ptr + cols)[None, :] * xf
             + gl.load(e.mix_ptr + e.N + cols)[None, :] * x0.to(gl.float32)).to(out_dtype)
    _store_tile(e.out_desc, out_buf, x, off_m, off_n)
    if e.WRITE_SS:
        xf = x.to(gl.float32)
        # one partial sum of squares a row: the tile is one SS_CHUNK wide (ws_product checks)
        gl.store(e.ss_out_ptr + rows * e.PARTS + off_n // BN, gl.sum(xf * xf, axis=1), mask=rows < e.M)


@gluon.jit
def _qkv_epilogue(e, acc, out_buf, off_m, off_n, rows, in_range, BM: gl.constexpr, BN: gl.constexpr,
                  row_parts_layout: gl.constexpr):
    """fused_model's qkv epilogue: the input RMSNorm as a row scale (rounded where the model stores q, k,
    v), then on query and key tiles per head the RMSNorm, RoPE (rotation pairs in adjacent columns) and
    the query gain. Queries go to out_desc, keys and values to extra_desc."""
    out_dtype: gl.constexpr = e.out_desc.dtype
    y = (acc * _row_scale(e, rows, in_range, row_parts_layout)[:, None]).to(out_dtype)
    if off_n < e.Q_COLS + e.K_COLS:
        layout: gl.constexpr = _row_major_layout(BN)
        HEADS: gl.constexpr = BN // e.HEAD_DIM
        HALF: gl.constexpr = e.HEAD_DIM // 2
        tma.store_wait(pendings=0)
        out_buf.store(y)
        heads = gl.reshape(out_buf.load(layout).to(gl.float32), (BM, HEADS, e.HEAD_DIM))
        heads = heads * gl.rsqrt(gl.sum(heads * heads, axis=2) / e.HEAD_DIM + e.eps)[:, :, None]
        first, second = gl.split(gl.reshape(heads, (BM, HEADS, HALF, 2)))  # columns alternate halves
        pairs: gl.constexpr = first.type.layout
        table: gl.constexpr = gl.SliceLayout(1, pairs)  # [rows, HALF]
        table_rows = off_m + gl.arange(0, BM, layout=gl.SliceLayout(1, table))
        j = gl.arange(0, HALF, layout=gl.SliceLayout(0, table))
        positions = table_rows % e.rows_per_window + e.pos_offset
        table_ptrs = positions[:, None] * HALF + j[None, :]
        cos = gl.expand_dims(gl.load(e.cos_ptr + table_ptrs, mask=table_rows[:, None] < e.M, other=0.0), 1)
        sin = gl.expand_dims(gl.load(e.sin_ptr + table_ptrs, mask=table_rows[:, None] < e.M, other=0.0), 1)
        heads_here = off_n // e.HEAD_DIM + gl.arange(0, HEADS, layout=gl.SliceLayout(0, gl.SliceLayout(2, pairs)))
        gain = gl.load(e.gain_ptr + heads_here, mask=heads_here < e.Q_COLS // e.HEAD_DIM, other=1.0)
        gain = gl.expand_dims(gl.expand_dims(gain, 0), 2)
        rotated = gl.join((first * cos + second * sin) * gain, (second * cos - first * sin) * gain)
        rotated = gl.reshape(rotated, (BM, BN)).to(out_dtype)
        if off_n < e.Q_COLS:
            _store_tile(e.out_desc, out_buf, rotated, off_m, off_n)
        else:
            _store_tile(e.extra_desc, out_buf, rotated, off_m, off_n - e.Q_COLS)
    else:
        _store_tile(e.extra_desc, out_buf, y, off_m, off_n - e.Q_COLS)


@gluon.jit
def _consumer(ring, e, which: gl.constexpr, CONSUMERS: gl.constexpr, BM: gl.constexpr, BN: gl.constexpr,
              BK: gl.constexpr):
    layout: gl.constexpr = gl.NVMMADistributedLayout(version=[3, 0], warps_per_cta=[4, 1], instr_shape=[16, BN, 16])
    row_layout: gl.constexpr = gl.SliceLayout(1, layout)
    col_layout: gl.constexpr = gl.SliceLayout(0, layout)
    out_dtype: gl.constexpr = e.out_desc.dtype
    out_buf = ring.out_bufs.index(which)
    tiles = gl.cdiv(e.M, BM) * (e.N // BN)
    pid = gl.program_id(0)
    programs = gl.num_programs(0)
    local = which  # this program's tile count so far, for the ring position
    for tile in range(pid + which * programs, tiles, CONSUMERS * programs):
        off_m, off_n = _tile_offsets(tile, e.N, BM, BN)
        if e.EPILOGUE == 2:
            if e.PREFETCH:  # HBM -> L2 while the main loop runs
                _prefetch_residual_operands(e, off_m, off_n, BM, BN)
        acc = _main_loop(ring.a_bufs, ring.w_bufs, ring.ready, ring.empty, ring.order, which, local // CONSUMERS,
                         local * (e.K // BK), e.K, BM, BN, BK, ring.STAGES, CONSUMERS, layout)
        local += CONSUMERS
        rows = off_m + gl.arange(0, BM, layout=row_layout)
        in_range = rows[:, None] < e.M
        if e.EPILOGUE == 0:
            _store_tile(e.out_desc, out_buf, acc.to(out_dtype), off_m, off_n)
        elif e.EPILOGUE == 1:
            h = (acc * _row_scale(e, rows, in_range, col_layout)[:, None]).to(out_dtype).to(gl.float32)
            h = gl.maximum(h, 0.0)
            _store_tile(e.out_desc, out_buf, (h * h).to(out_dtype), off_m, off_n)
        elif e.EPILOGUE == 2:
            _residual_epilogue(e, acc, out_buf, off_m, off_n, BM, BN)
        else:
            _qkv_epilogue(e, acc, out_buf, off_m, off_n, rows, in_range, BM, BN, col_layout)
    tma.store_wait(pendings=0)


@gluon.jit
def _consumer_odd(ring, e, BM: gl.constexpr, BN: gl.constexpr, BK: gl.constexpr):
    _consumer(ring, e, 1, 2, BM, BN, BK)


@gluon.jit
def _consumer_even(ring, e, CONSUMERS: gl.constexpr, BM: gl.constexpr, BN: gl.constexpr, BK: gl.constexpr):
    _consumer(ring, e, 0, CONSUMERS, BM, BN, BK)


@gluon.jit(do_not_specialize=["M", "rows_per_window", "pos_offset"])  # a 1 would become a constexpr
def ws_gemm_kernel(a_desc, w_desc, out_desc, extra_desc, ss_in_ptr, ss_out_ptr, res_ptr, scale_ptr, skip_ptr,
                   skip_w_ptr, x0_ptr, x0_ids_ptr, mix_ptr, cos_ptr, sin_ptr, gain_ptr, M, eps, rows_per_window,
                   pos_offset,
                   N: gl.constexpr, K: gl.constexpr, STAGES: gl.constexpr, EPILOGUE: gl.constexpr, D: gl.constexpr,
                   PARTS: gl.constexpr, STORE_EXTRA: gl.constexpr, SKIP: gl.constexpr, MIX: gl.constexpr,
                   WRITE_SS: gl.constexpr, Q_COLS: gl.constexpr, K_COLS: gl.constexpr, HEAD_DIM: gl.constexpr,
                   X0_GATHER: gl.constexpr, PREFETCH: gl.constexpr, CONSUMERS: gl.constexpr,
                   CONSUMER_REGS: gl.constexpr, LOADER_REGS: gl.constexpr):
    BM: gl.constexpr = a_desc.block_type.shape[0]
    BK: gl.constexpr = a_desc.block_type.shape[1]
    BN: gl.constexpr = w_desc.block_type.shape[0]
    a_bufs = gl.allocate_shared_memory(a_desc.dtype, [STAGES] + a_desc.block_type.shape, a_desc.layout)
    w_bufs = gl.allocate_shared_memory(w_desc.dtype, [STAGES] + w_desc.block_type.shape, w_desc.layout)
    out_bufs = gl.allocate_shared_memory(out_desc.dtype, [2] + out_desc.block_type.shape, out_desc.layout)
    ready = gl.allocate_shared_memory(gl.int64, [STAGES, 1], mbarrier.MBarrierLayout())
    empty = gl.allocate_shared_memory(gl.int64, [STAGES, 1], mbarrier.MBarrierLayout())
    order = gl.allocate_shared_memory(gl.int64, [2, 1], mbarrier.MBarrierLayout())
    for i in gl.static_range(STAGES):
        mbarrier.init(ready.index(i), count=1)
        mbarrier.init(empty.index(i), count=1)
    for i in gl.static_range(2):
        mbarrier.init(order.index(i), count=1)
    ring = Ring(a_bufs, w_bufs, ready, empty, order, out_bufs, STAGES)
    e = Epilogue(out_desc, extra_desc, ss_in_ptr, ss_out_ptr, res_ptr, scale_ptr, skip_ptr, skip_w_ptr, x0_ptr,
                 x0_ids_ptr, mix_ptr, cos_ptr, sin_ptr, gain_ptr, M, eps, rows_per_window, pos_offset, N, K, EPILOGUE,
                 D, PARTS, STORE_EXTRA, SKIP, MIX, WRITE_SS, Q_COLS, K_COLS, HEAD_DIM, X0_GATHER, PREFETCH)
    # (the partitions' argument tuples are written in place: a tuple held in a variable turns constexprs into
    # tensors in Triton 3.6)
    if CONSUMERS == 2:
        gl.warp_specialize([
            (_consumer_even, (ring, e, 2, BM, BN, BK)),
            (_consumer_odd, (ring, e, BM, BN, BK)),
            (_loader, (a_desc, w_desc, a_bufs, w_bufs, ready, empty, M, N, K, BM, BN, BK, STAGES)),
        ], [4, 1], [CONSUMER_REGS, LOADER_REGS])
    else:  # one consumer warpgroup takes every tile: the loader alone runs ahead
        gl.warp_specialize([
            (_consumer_even, (ring, e, 1, BM, BN, BK)),
            (_loader, (a_desc, w_desc, a_bufs, w_bufs, ready, empty, M, N, K, BM, BN, BK, STAGES)),
        ], [1], [LOADER_REGS])


def _gl_dtype(dtype: torch.dtype):
    return {torch.bfloat16: gl.bfloat16, torch.float16: gl.float16, torch.float32: gl.float32}[dtype]


def _desc(t: Tensor, block: list[int]) -> TensorDescriptor:
    return TensorDescriptor.from_tensor(t, block, gl.NVMMASharedLayout.get_default_for(block, _gl_dtype(t.dtype)))


def _programs(rows: int, cols: int, config: WsConfig, device: torch.device) -> int:
    if cols % config.block_n:
        raise ValueError(f"{cols} output columns do not divide into tiles of {config.block_n}")
    tiles = triton.cdiv(rows, config.block_m) * (cols // config.block_n)
    return max(1, min(tiles, torch.cuda.get_device_properties(device).multi_processor_count))


@functools.lru_cache(maxsize=None)
def _is_hopper(device: torch.device) -> bool:
    return device.type == "cuda" and torch.cuda.get_device_capability(device)[0] == 9


def _launch(a: Tensor, w: Tensor, config: WsConfig, out: Tensor, extra: Tensor | None, epilogue: int, *,
            dim: int, parts: int, eps: float = 0.0, ss: Tensor | None = None, ss_out: Tensor | None = None,
            res: Tensor | None = None, scale: Tensor | None = None, skip: int = 0, skip_source: Tensor | None = None,
            skip_w: Tensor | None = None, x0: Tensor | None = None, x0_ids: Tensor | None = None,
            mix: Tensor | None = None, cos: Tensor | None = None, sin: Tensor | None = None, gain: Tensor | None = None,
            rows_per_window: int = 1, pos_offset: int = 0, q_cols: int = 0, k_cols: int = 0, head_dim: int = 64,
            store_extra: bool = False) -> None:
    if not _is_hopper(a.device):
        raise RuntimeError(f"bench/ws_gemm.py's kernels run on a Hopper GPU (sm_90) only, not on {a.device}: "
                           "they are built of wgmma and Hopper's TMA")
    rows, cols, inner = a.shape[0], w.shape[0], a.shape[1]
    bm, bn, bk = config.block_m, config.block_n, config.block_k
    if inner % bk:
        raise ValueError(f"the inner dimension {inner} does not divide into steps of {bk}")
    pointer = lambda t: t if t is not None else out  # what an epilogue variant does not read
    ws_gemm_kernel[(_programs(rows, cols, config, a.device),)](
        _desc(a, [bm, bk]), _desc(w, [bn, bk]), _desc(out, [bm, bn]), _desc(pointer(extra), [bm, bn]),
        pointer(ss), pointer(ss_out), pointer(res), pointer(scale), pointer(skip_source), pointer(skip_w), pointer(x0),
        pointer(x0_ids), pointer(mix), pointer(cos), pointer(sin), pointer(gain), rows, eps, rows_per_window,
        pos_offset,
        N=cols, K=inner, STAGES=config.stages, EPILOGUE=epilogue, D=dim, PARTS=parts, STORE_EXTRA=store_extra,
        SKIP=skip, MIX=mix is not None, WRITE_SS=ss_out is not None, Q_COLS=q_cols, K_COLS=k_cols,
        HEAD_DIM=head_dim, X0_GATHER=x0_ids is not None, PREFETCH=epilogue == RESIDUAL and config.prefetch_l2,
        CONSUMERS=config.consumers, CONSUMER_REGS=config.consumer_regs,
        LOADER_REGS=config.loader_regs, num_warps=4, maxnreg=config.launch_regs)


def ws_product(a: Tensor, w: Tensor, config: WsConfig, *, epilogue: int = BARE, ss: Tensor | None = None,
               eps: float = 0.0, res: Tensor | None = None, scale: Tensor | None = None, write_ss: bool = False,
               extra: Tensor | None = None, skip: int = 0, skip_source: Tensor | None = None,
               skip_w: Tensor | None = None, x0: Tensor | None = None, x0_ids: Tensor | None = None,
               mix: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
    """out = epilogue(a @ w^T) with a [M, K] and w [N, K] (both K-contiguous), for BARE, RELU2 and
    RESIDUAL (fused_model's _relu2 and _residual); returns (out, the partial sums of squares written
    with write_ss). With x0_ids ([M] token ids) x0 is a [vocab, N] table whose rows they pick."""
    rows, cols, inner = a.shape[0], w.shape[0], a.shape[1]
    if epilogue not in (BARE, RELU2, RESIDUAL):
        raise ValueError(f"ws_product takes the BARE, RELU2 and RESIDUAL epilogues (ws_qkv the QKV one), not {epilogue}")
    if epilogue == RESIDUAL and config.block_n != SS_CHUNK:
        raise ValueError(f"the residual epilogue's tiles are one {SS_CHUNK}-column chunk of the sums of squares wide, "
                         f"not {config.block_n}")
    if x0_ids is not None and (x0 is None or x0.ndim != 2 or x0.shape[1] != cols or x0_ids.shape != (rows,)):
        raise ValueError(f"x0_ids must hold one token id for each of the {rows} rows and x0 be a [vocab, {cols}] table, "
                         f"not ids {tuple(x0_ids.shape)} and x0 {None if x0 is None else tuple(x0.shape)}")
    out = torch.empty(rows, cols, dtype=a.dtype, device=a.device)
    parts = max(1, cols // SS_CHUNK) if epilogue == RESIDUAL else (ss.shape[1] if ss is not None else 1)
    ss_out = torch.empty(rows, parts, dtype=torch.float32, device=a.device) if write_ss else None
    _launch(a, w, config, out, extra, epilogue, dim=inner if epilogue == RELU2 else cols, parts=parts, eps=eps, ss=ss,
            ss_out=ss_out, res=res, scale=scale, skip=skip, skip_source=skip_source, skip_w=skip_w, x0=x0,
            x0_ids=x0_ids, mix=mix, store_extra=extra is not None)
    return out, ss_out


def ws_qkv(x: Tensor, ss: Tensor, weight: Tensor, config: WsConfig, *, q_cols: int, k_cols: int, head_dim: int,
           gain: Tensor, cos: Tensor, sin: Tensor, rows_per_window: int, pos_offset: int, eps: float
           ) -> tuple[Tensor | None, Tensor | None]:
    """fused_model's _qkv on the Gluon product: (q [rows, q_cols], k and v [rows, cols - q_cols]), either
    None when it has no columns."""
    rows, cols = x.shape[0], weight.shape[0]
    bn = config.block_n
    if q_cols % bn or k_cols % bn or cols % bn or bn % head_dim:
        raise ValueError(f"qkv tiles of {bn} columns would straddle q ({q_cols}), k ({k_cols}) and v, or heads of "
                         f"{head_dim}")
    q = torch.empty(rows, q_cols, dtype=x.dtype, device=x.device) if q_cols else None
    kv = torch.empty(rows, cols - q_cols, dtype=x.dtype, device=x.device) if cols > q_cols else None
    _launch(x, weight, config, q if q is not None else kv, kv, QKV, dim=x.shape[1], parts=ss.shape[1], eps=eps,
            ss=ss, cos=cos, sin=sin, gain=gain, rows_per_window=rows_per_window, pos_offset=pos_offset,
            q_cols=q_cols, k_cols=k_cols, head_dim=head_dim)
    return q, kv


__all__ = ["BARE", "CONFIGS", "DEFAULT_RESIDUAL_OPERANDS", "QKV", "RELU2", "RESIDUAL", "RESIDUAL_KINDS",
           "RESIDUAL_OPERANDS", "WsConfig", "configs_with", "ws_gemm_kernel", "ws_product", "ws_qkv"]
