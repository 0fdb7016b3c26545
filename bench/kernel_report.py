"""Compile bench/fused_model.py's kernels for Hopper (sm_90a) on any machine, no GPU needed, and report
what the compiler made of them: registers, spills, shared memory, and whether the products use the
Hopper matrix instructions (HGMMA) and the bulk tensor copies (UTMALDG).

    python bench/kernel_report.py [--candidates] [--json PATH]

The launches are recorded from a real forward of the baseline-shaped model on the CPU (the kernels are
replaced by a recorder, so nothing runs), so the report compiles exactly the kernels and constants the
forward launches, with Triton's own compiler and the ptxas, cuobjdump and nvdisasm its package ships.
With --candidates, every tile configuration `fused_model.tune` would time is compiled too: a
configuration that spills or drops HGMMA needs no device time to be ruled out. It exits 1 when a kernel
of the configurations in use spills or a product kernel lacks HGMMA.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from dataclasses import dataclass, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]
os.environ.pop("TRITON_INTERPRET", None)  # the interpreter would hand us functions that cannot be compiled

import torch  # noqa: E402

try:
    import triton  # noqa: E402
except ImportError as error:
    sys.exit(f"kernel_report.py: needs Triton ({error}); `pip install -e .[test]` installs it")
import triton.language as tl  # noqa: E402
from triton.compiler import ASTSource  # noqa: E402
from triton.tools.tensor_descriptor import TensorDescriptor  # noqa: E402

import fused_model  # noqa: E402
from offline_compile import HOPPER, inspect_cubin  # noqa: E402
from baseline_model import BaselineShapedGPT, ModelShape  # noqa: E402

KERNELS = ("embed_kernel", "first_qkv_kernel", "first_attention_kernel", "attention_kernel", "qkv_kernel",
           "residual_kernel", "relu2_kernel")
PRODUCT_KERNELS = {"qkv_kernel", "residual_kernel", "relu2_kernel"}
TORCH_TO_TRITON = {torch.bfloat16: "bf16", torch.float16: "fp16", torch.float32: "fp32", torch.int64: "i64",
                   torch.int32: "i32", torch.bool: "i1"}


@dataclass
class Launch:
    kernel: str
    signature: dict[str, str]
    constexprs: dict[str, object]
    options: dict[str, int]

    def key(self) -> str:
        constants = {k: str(v) for k, v in self.constexprs.items()}
        return json.dumps([self.kernel, self.signature, constants, self.options], sort_keys=True)


@dataclass
class Report:
    kernel: str
    constexprs: dict[str, str]
    options: dict[str, int]
    registers: int = -1
    spill_bytes: int = -1  # local memory per thread: spilled registers or arrays placed in memory
    shared_bytes: int = -1
    hgmma: int = 0
    tma_loads: int = 0
    error: str = ""
    in_use: bool = True


class Recorder:
    """Stands in for a @triton.jit kernel: `kernel[grid](*args, **kwargs)` records the launch."""

    def __init__(self, jit_fn, launches: list[Launch]) -> None:
        self.jit_fn, self.launches = jit_fn, launches

    def __getitem__(self, grid):
        def launch(*args, **kwargs):
            options = {k: kwargs.pop(k) for k in ("num_warps", "num_stages") if k in kwargs}
            names = self.jit_fn.arg_names
            bound = dict(zip(names, args), **kwargs)
            signature, constexprs = {}, {}
            for index, name in enumerate(names):
                value = bound[name]
                if self.jit_fn.params[index].is_constexpr:
                    signature[name], constexprs[name] = "constexpr", value
                else:
                    signature[name] = _type_string(value)
            self.launches.append(Launch(self.jit_fn.__name__, signature, constexprs, options))
        return launch


def _type_string(value) -> str:
    if isinstance(value, TensorDescriptor):
        shape = ", ".join(str(s) for s in value.block_shape)
        return f"tensordesc<{TORCH_TO_TRITON[value.base.dtype]}[{shape}]>"
    if isinstance(value, torch.Tensor):
        return "*" + TORCH_TO_TRITON[value.dtype]
    if isinstance(value, bool):
        return "i1"
    if isinstance(value, int):
        return "i32"
    if isinstance(value, float):
        return "fp32"
    raise TypeError(f"no Triton type for {type(value).__name__}")


def record_launches(configs: dict[str, fused_model.TileConfig] | None = None) -> list[Launch]:
    """The launches of building the fused model (its tables) and of forwards with every last-n variant (full
    windows; the last 64), with block 0's attention in first_attention_kernel and through cuDNN, and with
    attention_kernel for the last block's queries (the default) and for full windows."""
    launches: list[Launch] = []
    originals = {name: getattr(fused_model, name) for name in KERNELS}
    shape = ModelShape()
    model = BaselineShapedGPT(shape).to(torch.bfloat16)
    try:
        for name, fn in originals.items():
            setattr(fused_model, name, Recorder(fn, launches))
        fused = fused_model.FusedBaselineGPT(model, configs)
        # and block 0's attention per window through cuDNN (first_qkv_kernel, not first_attention_kernel)
        per_window = fused_model.FusedBaselineGPT(model, configs, window_stride=None)
        every_block = fused_model.FusedBaselineGPT(
            model, configs, attention=replace(fused_model.ATTENTION_TILES, full_windows=True))
        ids = torch.zeros(1, shape.seq_len, dtype=torch.long)
        with torch.inference_mode():
            fused.forward_logits(ids, None)
            fused.forward_logits(ids, 64)
            per_window.forward_logits(ids, 64)
            every_block.forward_logits(ids, 64)
    finally:
        for name, fn in originals.items():
            setattr(fused_model, name, fn)
    unique: dict[str, Launch] = {}
    for launch in launches:
        unique.setdefault(launch.key(), launch)
    return list(unique.values())


def compile_report(launch: Launch) -> Report:
    report = Report(launch.kernel, {k: str(v) for k, v in launch.constexprs.items()}, launch.options)
    fn = getattr(fused_model, launch.kernel)
    try:
        compiled = triton.compile(ASTSource(fn, launch.signature, launch.constexprs), target=HOPPER,
                                  options=launch.options)
    except Exception as error:  # the compiler's own message is the finding
        report.error = f"{type(error).__name__}: {str(error).strip().splitlines()[-1][:200]}"
        return report
    summary = inspect_cubin(compiled.asm["cubin"])
    report.registers, report.spill_bytes = summary["registers"], summary["spill_bytes"]
    report.shared_bytes = max(summary["static_shared_bytes"], int(compiled.metadata.shared))
    report.hgmma, report.tma_loads = summary["hgmma"], summary["tma_loads"]
    return report


def problems(report: Report) -> list[str]:
    out = []
    if report.error:
        out.append(f"does not compile: {report.error}")
    else:
        if report.spill_bytes:
            out.append(f"{report.spill_bytes} bytes of local memory per thread (spills)")
        if report.kernel in PRODUCT_KERNELS and not report.hgmma:
            out.append("no HGMMA: the product does not use Hopper's matrix instructions")
    return out


def candidate_launches(in_use: list[Launch]) -> list[Launch]:
    """Every tuning candidate in place of each product kernel's configuration in use."""
    out = []
    for launch in in_use:
        if launch.kernel not in PRODUCT_KERNELS:
            continue
        for config in fused_model.tune_candidates():
            if not fused_model.applies(launch.kernel.removesuffix("_kernel"), config):
                continue
            # The candidate's constants as the forward would pass them; the compile options apart.
            constants = fused_model.launch_options(config, persistent_mode="PERSISTENT" in launch.constexprs)
            options = {key: constants.pop(key) for key in ("num_warps", "num_stages")}
            constexprs = dict(launch.constexprs, **constants)
            if launch.kernel == "qkv_kernel" and any(int(constexprs[k]) % config.block_n for k in ("Q_COLS", "K_COLS", "N")):
                continue
            signature = dict(launch.signature)
            for name, value in signature.items():  # descriptors take the candidate's block shapes
                if value.startswith("tensordesc"):
                    signature[name] = _candidate_block(name, value, config)
            out.append(Launch(launch.kernel, signature, constexprs, options))
    unique = {launch.key(): launch for launch in out}
    return [launch for key, launch in unique.items() if key not in {l.key() for l in in_use}]


def _candidate_block(name: str, value: str, config: fused_model.TileConfig) -> str:
    dtype = re.match(r"tensordesc<(\w+)\[", value).group(1)
    rows, cols = {"a_desc": (config.block_m, config.block_k), "w_desc": (config.block_n, config.block_k)}.get(
        name, (config.block_m, config.block_n))
    return f"tensordesc<{dtype}[{rows}, {cols}]>"


def print_table(reports: list[Report]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="fused kernels compiled for sm_90a")
    for column in ("kernel", "tile (BM BN BK / warps stages)", "persistent", "flags", "regs", "spill B", "shared KiB", "HGMMA",
                   "TMA loads", "problems"):
        table.add_column(column)
    for r in reports:
        c = r.constexprs
        # first_attention and attention: a tile of query heads x queries by keys
        rows = c.get("BM", int(c.get("GROUP", c.get("STACK", 0))) * int(c.get("STRIDE", c.get("BLOCK_Q", 0))) or None)
        columns = c.get("BN", c.get("BLOCK_K", c.get("D", c.get("HEAD_DIM"))))
        tile = f"{rows} {columns} {c.get('BK', '-')} / {r.options.get('num_warps')} {r.options.get('num_stages', '-')}"
        flag_names = ("Q_COLS", "K_COLS", "SKIP", "MIX", "STORE_EXTRA", "WRITE_SS", "PREFETCH", "WINDOW_BLOCKS",
                      "QUERIES")
        flags = " ".join(f"{k}={c[k]}" for k in flag_names if k in c)
        table.add_row(r.kernel.removesuffix("_kernel"), tile, c.get("PERSISTENT", "-"), flags, str(r.registers), str(r.spill_bytes),
                      f"{r.shared_bytes / 1024:.0f}", str(r.hgmma), str(r.tma_loads),
                      "; ".join(problems(r)) or ("ok" if r.in_use else "ok (candidate)"))
    Console(width=200).print(table)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--candidates", action="store_true", help="also compile every tuning candidate")
    parser.add_argument("--json", help="write the reports here")
    args = parser.parse_args()
    in_use = record_launches()
    reports = [compile_report(launch) for launch in in_use]
    if args.candidates:
        for launch in candidate_launches(in_use):
            report = compile_report(launch)
            report.in_use = False
            reports.append(report)
    print_table(reports)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({"device": "sm_90a target, compiled offline (nothing ran on a GPU)",
                                               "target": "sm_90a", "triton": triton.__version__,
                                               "torch": torch.__version__,
                                               "kernels": [r.__dict__ for r in reports]}, indent=2) + "\n")
    failing = [r for r in reports if r.in_use and problems(r)]
    return 1 if failing else 0


if __name__ == "__main__":
    sys.exit(main())
