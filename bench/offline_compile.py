"""Compile a @triton.jit or @gluon.jit kernel for sm_90a on a machine without a GPU, from the arguments
its launch would take: the JIT's own binder specialises them (types, alignment, tensor descriptors with
their layouts) as a launch on a device would, and the compiler runs to a cubin; nothing runs.

    compiled = compile_for_hopper(kernel, *args, num_warps=4, **constexprs)
"""

from __future__ import annotations

from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource
from triton.compiler import compile as triton_compile
from triton.compiler import make_backend
from triton.runtime.jit import create_function_from_signature

HOPPER = GPUTarget("cuda", 90, 32)


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


__all__ = ["HOPPER", "compile_for_hopper"]
