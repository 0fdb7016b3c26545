"""Time bench/ws_gemm.py's warp-specialised products against cuBLAS and bench/fused_model.py's Triton
kernels, on the shapes of one evaluation batch of the baseline (256 windows of 1024 tokens), after
checking that each gives the same values as the Triton kernel it would replace.

    PYTHONPATH=. python bench/ws_gemm_bench.py [--batch-windows 256] [--out-dir bench/results]

Prints a table and writes bench/results/ws_gemm_<device>.json (device name, milliseconds per call as
the median of triton.testing.do_bench, and the largest differences from the Triton kernels' outputs).
Needs a Hopper GPU (sm_90).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))

import fused_model  # noqa: E402
import ws_gemm  # noqa: E402
from baseline_model import BaselineShapedGPT, ModelShape  # noqa: E402
from eval_throughput import device_name, slug  # noqa: E402


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch-windows", type=int, default=256, help="windows of seq_len tokens a batch")
    parser.add_argument("--out-dir", default="bench/results")
    parser.add_argument("--consumers", type=int, nargs="+", default=[1, 2], choices=(1, 2),
                        help="the schedules to time: 2 consumer warpgroups (ping-pong), 1")
    parser.add_argument("--only", nargs="+", default=None,
                        choices=("relu2", "residual", "residual_extra", "residual_skip", "residual_attn", "qkv_product"),
                        help="time these products only (all by default)")
    return parser.parse_args()


def candidates(kernel: str, consumers: list[int]) -> list[ws_gemm.WsConfig]:
    """(block_m, block_n, stages, consumers). The first call (..._first.json: 64-row tiles) found the main
    loop starved: 3, 4, 5 stages took 0.80, 0.64, 0.57 ms on the relu2 shape. Bigger tiles read less from
    L2 per FLOP (64 x 128: 44 FLOP a byte at K = 1024; 128 x 128: 65)."""
    shapes = [(64, 128, 5, 2), (128, 128, 4, 2), (128, 128, 5, 2), (128, 128, 4, 1)]
    if kernel != "residual":  # the residual epilogue's tiles are one sums-of-squares chunk wide
        shapes += [(64, 256, 3, 2), (64, 256, 4, 2)]
    configs = [ws_gemm.WsConfig(block_m=bm, block_n=bn, stages=stages, consumers=count)
               for bm, bn, stages, count in shapes if count in consumers]
    if kernel == "residual":  # where the epilogue's operands come from, at the default tiles
        configs += [ws_gemm.configs_with(name)["residual"] for name in ws_gemm.RESIDUAL_OPERANDS if name != "base"]
    return configs


def bf16_difference(got: torch.Tensor, want: torch.Tensor) -> dict[str, float]:
    """Largest absolute difference relative to the largest value, and the share of elements that differ."""
    got, want = got.float(), want.float()
    return {"max_abs_over_max": float((got - want).abs().max() / want.abs().max().clamp_min(1e-30)),
            "share_differing": float((got != want).float().mean())}


def main() -> int:
    args = parse_args()
    from triton.testing import do_bench

    if not torch.cuda.is_available() or torch.cuda.get_device_capability()[0] != 9:
        sys.exit("ws_gemm_bench.py: needs a Hopper GPU (sm_90); Gluon's wgmma kernels compile for sm_90a only")
    device = torch.device("cuda")
    torch.manual_seed(0)
    shape = ModelShape()
    model = BaselineShapedGPT(shape).to(device=device, dtype=torch.bfloat16)
    fused = fused_model.FusedBaselineGPT(model)
    rows = args.batch_windows * shape.seq_len
    params = fused.blocks[1]
    ids = torch.randint(0, shape.vocab_size, (args.batch_windows, shape.seq_len), device=device)
    x0, x, ss = fused._embed(ids, params["mix"])
    hidden = torch.randn(rows, params["fc"].shape[0], device=device, dtype=torch.bfloat16).abs_()
    y = torch.randn(rows, shape.model_dim, device=device, dtype=torch.bfloat16)
    skip_source = torch.randn_like(x)
    bench = lambda fn: do_bench(fn, warmup=25, rep=100, return_mode="median")

    x0_table = fused._embed(torch.arange(shape.vocab_size, device=device), params["mix"])[0]
    flat_ids = ids.reshape(-1)

    def ws_residual(c, a, w, **options):
        """The Gluon residual; with c.x0_from_ids (and a mix) x0 comes from the table by token id."""
        if c.x0_from_ids and "mix" in options:
            options.update(x0=x0_table, x0_ids=flat_ids)
        return ws_gemm.ws_product(a, w, c, epilogue=ws_gemm.RESIDUAL, **options)

    # name: (A, W, Triton kernel, WS kernel given a config); the residuals as the forward's blocks run them
    mlp = dict(res=x, scale=params["mlp_scale"], write_ss=True, x0=x0, mix=params["mix"])
    skip = dict(skip=1, skip_source=skip_source, skip_w=fused.skip_weights[0])
    extra = torch.empty_like(x)
    jobs = {
        "relu2": (x, params["fc"], lambda: fused._relu2(x, ss, params["fc"]),
                  lambda c: ws_gemm.ws_product(x, params["fc"], c, epilogue=ws_gemm.RELU2, ss=ss, eps=fused.eps)[0]),
        "residual": (hidden, params["down"], lambda: fused._residual(hidden, params["down"], **mlp),
                     lambda c: ws_residual(c, hidden, params["down"], **mlp)),
        "residual_extra": (hidden, params["down"], lambda: fused._residual(hidden, params["down"], extra=extra, **mlp),
                           lambda c: ws_residual(c, hidden, params["down"], extra=extra, **mlp)),
        "residual_skip": (hidden, params["down"], lambda: fused._residual(hidden, params["down"], **mlp, **skip),
                          lambda c: ws_residual(c, hidden, params["down"], **mlp, **skip)),
        "residual_attn": (y, params["proj"],
                          lambda: fused._residual(y, params["proj"], x, params["attn_scale"], write_ss=True),
                          lambda c: ws_residual(c, y, params["proj"], res=x, scale=params["attn_scale"],
                                                write_ss=True)),
        "qkv_product": (x, params["qkv"], None, None),
    }
    if args.only:
        jobs = {name: job for name, job in jobs.items() if name in args.only}
    results: dict = {"device": device_name(device, 1), "torch": torch.__version__, "rows": rows, "kernels": {}}
    import triton
    results["triton"] = triton.__version__
    print(f"{results['device']}: {rows} rows a batch")
    for name, (a, w, triton_run, ws_run) in jobs.items():
        entry: dict = {"shape": [rows, w.shape[0], a.shape[1]]}
        entry["cublas_product_ms"] = bench(lambda: F.linear(a, w))
        want_product = F.linear(a, w)
        if triton_run is not None:
            entry["triton_kernel_ms"] = bench(triton_run)
            want = triton_run()
        entry["ws"] = {}
        kernel = "residual" if name.startswith("residual") else name
        for config in candidates(kernel, args.consumers):
            label = f"bm{config.block_m}_bn{config.block_n}_s{config.stages}_c{config.consumers}"
            label += "_prefetch" * config.prefetch_l2 + "_gather" * config.x0_from_ids
            row: dict = {"config": asdict(config)}
            try:
                bare = ws_gemm.ws_product(a, w, config)[0]
                torch.cuda.synchronize()
                row["bare_difference_vs_cublas"] = bf16_difference(bare, want_product)
                row["bare_product_ms"] = bench(lambda: ws_gemm.ws_product(a, w, config))
                if ws_run is not None:
                    got = ws_run(config)
                    torch.cuda.synchronize()
                    if isinstance(want, tuple):  # the residual kernels: (out, partial sums of squares)
                        row["difference_vs_triton"] = bf16_difference(got[0], want[0])
                        row["ss_difference_vs_triton"] = bf16_difference(got[1], want[1])
                    else:
                        row["difference_vs_triton"] = bf16_difference(got, want)
                    row["kernel_ms"] = bench(lambda: ws_run(config))
            except Exception as error:  # a configuration the compiler or the device refuses
                row["error"] = f"{type(error).__name__}: {str(error)[:300]}"
            entry["ws"][label] = row
            shown = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in row.items() if k != "config"}
            print(f"  {name:>14} {label}: {shown}")
        print(f"  {name:>14} cuBLAS product {entry['cublas_product_ms']:.4f} ms; Triton kernel "
              f"{entry.get('triton_kernel_ms', float('nan')):.4f} ms")
        results["kernels"][name] = entry
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"ws_gemm_{slug(results['device'])}.json"
    path.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
