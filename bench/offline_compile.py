"""Compile a @triton.jit or @gluon.jit kernel for sm_90a on a machine without a GPU, from the arguments
its launch would take: the JIT's own binder specialises them (types, alignment, tensor descriptors with
their layouts) as a launch on a device would, and the compiler runs to a cubin; nothing runs. Then read
what the compiler made of it with the cuobjdump and nvdisasm that Triton's package ships.

    compiled = compile_for_hopper(kernel, *args, num_warps=4, **constexprs)
    summary = inspect_cubin(compiled.asm["cubin"])   # registers, spills, shared memory, HGMMA, TMA, ...
"""

from __future__ import annotations

import re
import subprocess
import tempfile
from pathlib import Path

import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource
from triton.compiler import compile as triton_compile
from triton.compiler import make_backend
from triton.runtime.jit import create_function_from_signature

HOPPER = GPUTarget("cuda", 90, 32)
TOOLS = Path(triton.__file__).parent / "backends" / "nvidia" / "bin"


def compile_for_hopper(kernel, *args, **kwargs):
    """The compiled kernel (asm["cubin"], asm["ptx"], metadata) of `kernel` launched with these arguments."""
    backend = make_backend(HOPPER)
    binder = create_function_from_signature(kernel.signature, kernel.params, backend)
    bound_args, specialization, options = binder(*args, **kwargs)
    options, signature, constexprs, attrs = kernel._pack_args(backend, kwargs, bound_args, specialization, options)
    source_type = ASTSource
    if getattr(kernel, "is_gluon", lambda: False)():
        from triton.experimental.gluon._runtime import GluonASTSource as source_type
    source = source_type(kernel, signature, constexprs, attrs)
    return triton_compile(source, target=HOPPER, options=options.__dict__)


def inspect_cubin(cubin: bytes) -> dict[str, int]:
    """From cuobjdump's resource usage: registers a thread at launch, local memory a thread (spills or
    arrays placed in memory), static shared memory; from nvdisasm's SASS: the wgmma (HGMMA), TMA load
    (UTMALDG) and register reallocation (setmaxnreg) instructions."""
    with tempfile.NamedTemporaryFile(suffix=".cubin") as handle:
        handle.write(cubin)
        handle.flush()
        run = lambda *command: subprocess.run([*command, handle.name], capture_output=True, text=True,
                                              check=True).stdout
        usage, sass = run(str(TOOLS / "cuobjdump"), "-res-usage"), run(str(TOOLS / "nvdisasm"))
    number = lambda key: int(re.search(rf"{key}:(\d+)", usage).group(1))
    return {"registers": number("REG"), "spill_bytes": number("LOCAL"), "static_shared_bytes": number("SHARED"),
            "hgmma": len(re.findall(r"\bHGMMA\.", sass)), "tma_loads": len(re.findall(r"\bUTMALDG\b", sass)),
            "setmaxnreg": len(re.findall(r"\bU?SETMAXREG\b", sass))}


__all__ = ["HOPPER", "TOOLS", "compile_for_hopper", "inspect_cubin"]
