"""Shared test fixtures: where the read-only shared material lies, skipping cleanly when it is absent."""

from __future__ import annotations

from pathlib import Path

import pytest

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
