"""TRITON_INTERPRET for a block, then as it was: Triton reads it when it is imported, when a kernel is
defined and (3.9) when one is called. Shared by tests/conftest.py and tests/test_fused_model.py."""

from __future__ import annotations

import contextlib
import os


@contextlib.contextmanager
def interpreting(enabled: bool = True):
    before = os.environ.get("TRITON_INTERPRET")
    if enabled:
        os.environ["TRITON_INTERPRET"] = "1"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("TRITON_INTERPRET", None)
        else:
            os.environ["TRITON_INTERPRET"] = before
