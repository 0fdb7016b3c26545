"""Small data for the data-layer tests: a few real English documents and a tokenizer trained on them in
well under a second (vocabulary 320, the challenge's settings otherwise)."""

from __future__ import annotations

from pathlib import Path

from harness.data.build import train_tokenizer

TINY_VOCAB = 320


def tiny_documents(count: int = 24) -> list[str]:
    """The first `count` pydoc topics in name order: English text every CPython carries."""
    from pydoc_data.topics import topics

    return [topics[key] for key in sorted(topics)[:count]]


def tiny_tokenizer(path: Path, vocab_size: int = TINY_VOCAB, **overrides) -> Path:
    return train_tokenizer(tiny_documents(), path, vocab_size, **overrides)


def write_text_files(directory: Path, documents: list[str]) -> list[str]:
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for index, text in enumerate(documents):
        path = directory / f"doc{index:03d}.txt"
        path.write_text(text, encoding="utf-8")
        paths.append(str(path))
    return paths
