"""Shared test fixtures: where the read-only shared material lies, skipping cleanly when it is absent."""

from __future__ import annotations

from pathlib import Path

import pytest

from triton_modes import interpreting


def _import_triton_interpreted_without_a_gpu() -> None:
    """On a CPU-only machine Triton's own library (tl.sum and the rest, @jit functions themselves) must be
    created under its interpreter, or tests/test_fused_model.py's interpreted kernels fail to call it. It
    is created once, when Triton is first imported, and tests/test_ws_gemm.py imports Triton without the
    interpreter (its Gluon kernels cannot be defined under it): when it ran first, every interpreted test
    after it failed. So Triton's library, Gluon's too (which accepts interpreted functions only while the
    interpreter is on), is imported here, interpreted, before any test module, whichever order they run
    in; TRITON_INTERPRET is as it was afterwards, for the kernels the test modules define."""
    try:
        import torch

        if torch.cuda.is_available():
            return
    except ImportError:
        return
    with interpreting():
        try:
            import triton.language  # noqa: F401
        except ImportError:
            return
        try:
            import triton.experimental.gluon  # noqa: F401
        except ImportError:  # a Triton without Gluon
            pass


_import_triton_interpreted_without_a_gpu()

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED = REPO_ROOT.parent / "shared"
FIXTURE_RECORDS = SHARED / "fixtures" / "records"
REAL_TOKENIZER = SHARED / "tokenizers" / "fineweb_1024_bpe.model"


def pytest_collection_modifyitems(config, items):
    """GPU tests need CUDA; on CPU-only machines (CI) they are skipped with the reason."""
    try:
        import torch

        has_cuda = torch.cuda.is_available()
    except ImportError:
        has_cuda = False
    if has_cuda:
        return
    skip_gpu = pytest.mark.skip(reason="needs a CUDA device; this machine has none")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip_gpu)


@pytest.fixture
def fixture_records() -> Path:
    if not FIXTURE_RECORDS.is_dir():
        pytest.skip(f"shared fixtures not present at {FIXTURE_RECORDS}")
    return FIXTURE_RECORDS


@pytest.fixture
def real_tokenizer() -> Path:
    if not REAL_TOKENIZER.is_file():
        pytest.skip(f"real tokenizer not present at {REAL_TOKENIZER}")
    return REAL_TOKENIZER
