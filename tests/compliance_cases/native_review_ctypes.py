# Builds and loads a C++ kernel through ctypes; the scanner cannot read what it does with the tokens.
# expect-verdict: needs_review
# expect-hit: native_code review native_build
# expect-hit: native_code review native_library
import ctypes
import subprocess

import numpy as np


def build():
    subprocess.run(["g++", "-O3", "-shared", "-fPIC", "kernel.cpp", "-o", "libkernel.so"], check=True)
    return ctypes.CDLL("./libkernel.so")


def hints(val_tokens):
    lib = build()
    tokens = np.ascontiguousarray(val_tokens.numpy().astype(np.int64))
    out = np.zeros(len(tokens), dtype=np.int32)
    lib.fill_hints(tokens.ctypes.data, len(tokens), out.ctypes.data)
    return out
