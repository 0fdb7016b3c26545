"""Attention of one evaluation batch alone: SDPA (cuDNN first, as the evaluator selects) against
bench/fused_model.py's attention_kernel at each of a list of tiles, on the baseline's shapes.

    PYTHONPATH=. python bench/attention_speed.py [--batch-windows 256] [--out-dir bench/results]

One batch is `batch_windows` windows of 1024 tokens with q, k, v in the fused forward's layout (time-major
[rows, heads * 64]; 8 query heads over 4 KV heads), random bf16 values: the other blocks' full causal
attention (every query), and the last block's (the 64 scored queries over all keys). For each way: the
median time of do_bench, the TFLOP/s that gives (causal: each query's visible keys counted), the largest
relative difference of an output row from SDPA's in units of bf16's rounding (2^-7), and the kernel's
registers and spills.
Prints a table and writes bench/results/attention_speed_<device>.json. Needs a CUDA GPU.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from dataclasses import replace
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

import fused_model  # noqa: E402
from baseline_model import BaselineShapedGPT, ModelShape  # noqa: E402
from eval_throughput import device_name, slug  # noqa: E402
from harness import rules  # noqa: E402
from harness.evaluator import sdpa_context  # noqa: E402


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch-windows", type=int, default=256)
    parser.add_argument("--quick", action="store_true", help="the default tiles only")
    parser.add_argument("--out-dir", type=Path, default=ROOT / "bench" / "results")
    return parser.parse_args()


def candidate_tiles() -> list[fused_model.AttentionConfig]:
    """Tiles worth timing: up to 256 stacked rows, score tiles of at most 256 x 64 values, 3 stages, keys and
    values by pointers or by bulk tensor copies (TMA). (Of the first two H200 runs: 2 stages were slower for
    every tile, 4 no faster than 3, key blocks of 128 slower than 64.)"""
    tiles = []
    for block_q, block_k, stack, warps, tma in itertools.product((64, 128), (32, 64), (1, 2), (4, 8), (False, True)):
        rows = block_q * stack
        if rows * block_k > 256 * 64 or (rows == 256 and warps == 4) or (rows == 64 and warps == 8):
            continue
        tiles.append(fused_model.AttentionConfig(block_q, block_k, stack, warps, 3, tma=tma))
    return tiles


def causal_flops(batch: int, heads: int, head_dim: int, length: int, n: int) -> float:
    """q k^T and p v for each query's visible keys (query i of the last n sees length - n + i + 1 keys)."""
    visible = sum(length - n + i + 1 for i in range(n))
    return 4.0 * head_dim * visible * heads * batch


def time_ms(fn) -> float:
    from triton.testing import do_bench

    return float(do_bench(fn, warmup=10, rep=60, return_mode="median"))


def main() -> int:
    args = parse_args()
    if not torch.cuda.is_available():
        sys.exit("attention_speed.py: needs a CUDA GPU")
    device = torch.device("cuda")
    shape = ModelShape()
    model = BaselineShapedGPT(shape, seed=0).to(device=device, dtype=torch.bfloat16)
    batch, length = args.batch_windows, shape.seq_len
    heads, head_dim = shape.num_heads, shape.head_dim
    generator = torch.Generator(device=device).manual_seed(0)
    rows = []
    tiles = [fused_model.AttentionConfig()] if args.quick else candidate_tiles()
    fused = fused_model.FusedBaselineGPT(model, window_stride=None, first_block_table=False)
    unit = 2.0 ** -7  # bf16's relative rounding step: per output row, as tests/test_fused_model.py bounds it
    for n in (length, rules.EVAL_STRIDE):
        q = torch.randn(batch * n, fused.q_dim, device=device, generator=generator, dtype=torch.bfloat16)
        kv = torch.randn(batch * length, 2 * fused.kv_dim, device=device, generator=generator, dtype=torch.bfloat16)
        flops = causal_flops(batch, heads, head_dim, length, n)
        with sdpa_context(device, None):
            want = fused._attention_by_sdpa(q, kv, batch, length, n)
            sdpa_ms = time_ms(lambda: fused._attention_by_sdpa(q, kv, batch, length, n))
        rows.append(dict(queries=n, way="sdpa", ms=round(sdpa_ms, 4), tflops=round(flops / sdpa_ms / 1e9, 1)))
        for tiles_used in dict.fromkeys(replace(tiles_asked, block_q=min(tiles_asked.block_q, n))
                                        for tiles_asked in tiles):
            row = dict(queries=n, way="kernel", **vars(tiles_used))
            try:
                got = fused._attention_by_kernel(q, kv, batch, length, n, tiles_used)
                torch.cuda.synchronize()
                ms = time_ms(lambda: fused._attention_by_kernel(q, kv, batch, length, n, tiles_used))
            except Exception as error:  # a tile the compiler or the GPU cannot take: recorded, not fatal
                row["error"] = f"{type(error).__name__}: {str(error).splitlines()[0][:200]}"
                rows.append(row)
                continue
            compiled = compiled_kernel()
            row.update(ms=round(ms, 4), tflops=round(flops / ms / 1e9, 1), vs_sdpa=round(sdpa_ms / ms, 3),
                       max_units_from_sdpa=round(float(row_errors(got, want).max() / unit), 3),
                       **compiled)
            rows.append(row)
    print_table(rows)
    result = dict(device=device_name(device, 1), torch=torch.__version__, triton=_triton_version(),
                  batch_windows=batch, seq_len=length, heads=heads, kv_heads=shape.num_kv_heads, head_dim=head_dim,
                  dtype="bfloat16", values="random normal", timing="triton.testing.do_bench median (ms)",
                  rows=rows, best=best_rows(rows))
    args.out_dir.mkdir(parents=True, exist_ok=True)
    path = args.out_dir / f"attention_speed_{slug(result['device'])}.json"
    path.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {path}")
    return 0


def row_errors(got: torch.Tensor, want: torch.Tensor) -> torch.Tensor:
    """Each output row's relative error (2-norm)."""
    return (got.float() - want.float()).norm(dim=1) / want.float().norm(dim=1)


def compiled_kernel() -> dict:
    """Registers and spills of the variant just launched (the newest entry of the kernel's cache), where this
    Triton's cache has the layout 3.6's has; else nothing."""
    try:
        for cache in fused_model.attention_kernel.device_caches.values():
            kernels = list(cache[0].values())
            if kernels:
                return dict(registers=kernels[-1].n_regs, spills=kernels[-1].n_spills)
    except (AttributeError, IndexError, TypeError):
        pass
    return {}


def best_rows(rows: list[dict]) -> dict:
    best = {}
    for row in rows:
        if row["way"] == "kernel" and "ms" in row:
            key = f"queries_{row['queries']}"
            if key not in best or row["ms"] < best[key]["ms"]:
                best[key] = row
    return best


def print_table(rows: list[dict]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="attention of one batch")
    for column in ("queries", "way", "block_q", "block_k", "stack", "warps", "stages", "tma", "ms", "TFLOP/s",
                   "vs SDPA", "units", "regs", "note"):
        table.add_column(column)
    for row in rows:
        table.add_row(*(str(row.get(key, "")) for key in (
            "queries", "way", "block_q", "block_k", "stack", "num_warps", "num_stages", "tma", "ms", "tflops",
            "vs_sdpa", "max_units_from_sdpa", "registers")), row.get("error", ""))
    Console(width=160).print(table)


def _triton_version() -> str:
    import triton

    return triton.__version__


if __name__ == "__main__":
    raise SystemExit(main())
