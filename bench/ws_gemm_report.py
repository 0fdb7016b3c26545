"""Compile bench/ws_gemm.py's Gluon kernels for sm_90a on any machine (no GPU: Triton's own compiler,
ptxas, cuobjdump and nvdisasm) and report what the compiler made of each launch the fused forward and
the benchmark make: registers, spills, shared memory, and the instructions warp specialisation rests on
(HGMMA, TMA loads, setmaxnreg).

    python bench/ws_gemm_report.py [--json bench/results/ws_gemm_report_sm90a.json]

Exit status 1 when a kernel does not compile, spills, or exceeds the SM's 227 KiB of shared memory.
"""

import argparse
import json
import os
import sys
from dataclasses import replace
from pathlib import Path

os.environ.pop("TRITON_INTERPRET", None)  # the interpreter would hand us functions that cannot be compiled
sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

import ws_gemm  # noqa: E402
from offline_compile import compile_for_hopper, inspect_cubin  # noqa: E402

SHARED_LIMIT = 227 * 1024  # bytes of shared memory one block may take on sm_90


def launches() -> list[tuple[str, ws_gemm.WsConfig, tuple, dict]]:
    """(name, config, args, kwargs) of every variant: each epilogue at the default tiles and the ones
    the benchmark times, recorded through ws_product / ws_qkv (nothing launches)."""
    recorded: list[tuple[tuple, dict]] = []

    class Recorder:
        def __getitem__(self, grid):
            return lambda *args, **kwargs: recorded.append((args, kwargs))

    rows, dim, hidden = 4096, 512, 1024
    zeros = lambda *shape, dtype=torch.bfloat16: torch.zeros(*shape, dtype=dtype)
    x, w, h, down = zeros(rows, dim), zeros(hidden, dim), zeros(rows, hidden), zeros(dim, hidden)
    vector, mix, ss, table = zeros(dim, dtype=torch.float32), zeros(2 * dim, dtype=torch.float32), \
        zeros(rows, 4, dtype=torch.float32), zeros(1024, 32, dtype=torch.float32)
    x0_table, ids = zeros(1024, dim), torch.zeros(rows, dtype=torch.int64)

    def mlp_residual(c, **options):  # the forward's MLP residuals, x0 from the tensor or (x0_from_ids) the table
        x0 = dict(x0=x0_table, x0_ids=ids) if c.x0_from_ids else dict(x0=x)
        return ws_gemm.ws_product(h, down, c, epilogue=ws_gemm.RESIDUAL, res=x, scale=vector, write_ss=True, mix=mix,
                                  **x0, **options)

    variants = {
        "bare": lambda c: ws_gemm.ws_product(x, w, c),
        "relu2": lambda c: ws_gemm.ws_product(x, w, c, epilogue=ws_gemm.RELU2, ss=ss, eps=1e-6),
        "residual": lambda c: ws_gemm.ws_product(x, zeros(dim, dim), c, epilogue=ws_gemm.RESIDUAL, res=x, scale=vector,
                                                 write_ss=True),
        "residual_mix_extra": lambda c: mlp_residual(c, extra=torch.empty_like(x)),
        "residual_mix_skip": lambda c: mlp_residual(c, skip=1, skip_source=x, skip_w=vector),
        "residual_mix_skip_extra": lambda c: mlp_residual(c, extra=torch.empty_like(x), skip=1, skip_source=x,
                                                          skip_w=vector),
        "qkv": lambda c: ws_gemm.ws_qkv(x, ss, w, c, q_cols=512, k_cols=256, head_dim=64, gain=vector[:8], cos=table,
                                        sin=table, rows_per_window=1024, pos_offset=0, eps=1e-6),
        "qkv_keys_values": lambda c: ws_gemm.ws_qkv(x, ss, w[512:], c, q_cols=0, k_cols=256, head_dim=64,
                                                    gain=vector[:8], cos=table, sin=table, rows_per_window=1024,
                                                    pos_offset=0, eps=1e-6),
    }
    # every default tile shape (ws_gemm.CONFIGS: 128 x 128 at 5 and 4 stages, 64 x 128) and one consumer alone
    configs = list(dict.fromkeys([*ws_gemm.CONFIGS.values(), ws_gemm.WsConfig(block_m=128, block_n=128, stages=4,
                                                                               consumers=1)]))
    # the residual epilogue's operand options, at the residuals' default tiles
    options = [replace(ws_gemm.CONFIGS[kind], **flags) for kind in ("residual", "residual_skip")
               for name, flags in ws_gemm.RESIDUAL_OPERANDS.items() if flags]
    original, programs, is_hopper = ws_gemm.ws_gemm_kernel, ws_gemm._programs, ws_gemm._is_hopper
    # an H100's 132 SMs; the tensors are on the CPU, where a launch is recorded, not run
    ws_gemm.ws_gemm_kernel, ws_gemm._programs, ws_gemm._is_hopper = Recorder(), (lambda *args: 132), (lambda _: True)
    out = []
    try:
        jobs = [(name, config) for config in configs for name in variants]
        jobs += [(name, config) for config in options for name in variants if name.startswith("residual_mix")]
        for name, config in jobs:
            recorded.clear()
            variants[name](config)
            out.append((name, config, *recorded[0]))
    finally:
        ws_gemm.ws_gemm_kernel, ws_gemm._programs, ws_gemm._is_hopper = original, programs, is_hopper
    return out


def report(name: str, config: ws_gemm.WsConfig, args: tuple, kwargs: dict) -> dict:
    entry = {"variant": name, "config": config.__dict__, "error": ""}
    try:
        compiled = compile_for_hopper(ws_gemm.ws_gemm_kernel, *args, **kwargs)
    except Exception as error:  # the compiler's own message is the finding
        entry["error"] = f"{type(error).__name__}: {str(error).strip().splitlines()[-1][:200]}"
        return entry
    summary = inspect_cubin(compiled.asm["cubin"])
    entry.update(launch_registers=summary["registers"], spill_bytes=summary["spill_bytes"],
                 shared_bytes=max(summary["static_shared_bytes"], int(compiled.metadata.shared)),
                 hgmma=summary["hgmma"], tma_loads=summary["tma_loads"], setmaxnreg=summary["setmaxnreg"])
    return entry


def problems(entry: dict) -> list[str]:
    if entry["error"]:
        return [f"does not compile: {entry['error']}"]
    out = []
    if entry["spill_bytes"]:
        out.append(f"spills {entry['spill_bytes']} bytes a thread")
    if entry["shared_bytes"] > SHARED_LIMIT:
        out.append(f"{entry['shared_bytes']} bytes of shared memory (the SM has {SHARED_LIMIT})")
    if not (entry["hgmma"] and entry["tma_loads"] and entry["setmaxnreg"]):
        out.append("no HGMMA, TMA load or setmaxnreg in the code")
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", help="write the report here")
    args = parser.parse_args()
    entries = [report(*launch) for launch in launches()]
    table = Table(title="bench/ws_gemm.py compiled for sm_90a")
    for column in ("variant", "tiles", "spills", "shared KiB", "HGMMA", "TMA loads", "setmaxnreg", "problems"):
        table.add_column(column)
    failed = False
    for entry in entries:
        config, found = entry["config"], problems(entry)
        failed |= bool(found)
        tiles = f"{config['block_m']}x{config['block_n']}, {config['stages']} stages, {config['consumers']} consumer(s)"
        tiles += "".join(f", {flag}" for flag in ("prefetch_l2", "x0_from_ids") if config.get(flag))
        table.add_row(entry["variant"], tiles, str(entry.get("spill_bytes", "")),
                      f"{entry.get('shared_bytes', 0) / 1024:.1f}", str(entry.get("hgmma", "")),
                      str(entry.get("tma_loads", "")), str(entry.get("setmaxnreg", "")), "; ".join(found) or "none")
    Console(width=160).print(table)
    if args.json:
        import triton

        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({"device": "sm_90a target, compiled offline (nothing ran on a GPU)",
                                               "triton": triton.__version__, "kernels": entries}, indent=2) + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
