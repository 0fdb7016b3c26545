"""The bundled example dataset: English text that ships with CPython, tokenised like the challenge's data.

So that the quick start works offline on any machine, the example corpus is made from text every
CPython install carries: the reference manual's topics (`pydoc_data.topics`, what `help("if")` shows)
and the standard library's docstrings and full-line comments, read from its source files with `ast`
(no module is imported). Each pydoc topic and each library module becomes documents of at most
`DOC_CHARS` characters, cut between paragraphs; documents are ordered by the sha256 of their names, a
fixed shuffle, so the validation split (the first `EXAMPLE_VAL_DOCS`) mixes both sources.

Deterministic for a given CPython build: the same Python version gives the same bytes (the manifest
records the version and the corpus's sha256). A SentencePiece BPE tokenizer with the challenge's
settings (build.TOKENIZER_SETTINGS, vocabulary 1024) is trained on the training documents only.
"""

from __future__ import annotations

import ast
import hashlib
import os
import platform
import shutil
import sysconfig
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from harness import __version__, rules
from harness.data.shards import MANIFEST_NAME, file_sha256, read_manifest
from harness.data.build import TOKENIZER_SETTINGS, Document, relative_path, train_tokenizer, write_dataset
from harness.errors import UserError
from harness.progress import progress

EXAMPLE_DATASET_NAME = "example_sp1024"
EXAMPLE_TOKENIZER_NAME = "example_1024_bpe.model"
EXAMPLE_RECIPE_VERSION = 1  # bump when the corpus or its cutting changes: cached datasets are rebuilt
EXAMPLE_VAL_DOCS = 200
DOC_CHARS = 3000
_SKIPPED_DIRS = {"site-packages", "dist-packages", "test", "tests", "idle_test", "pydoc_data", "__pycache__"}
_DOCSTRING_OWNERS = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)
BUILD_TOOL = "harness data example"


# ---- the corpus ----------------------------------------------------------------------------------

def example_documents() -> list[tuple[str, str]]:
    """(name, text) of every example document, in dataset order."""
    documents = list(_topic_documents()) + list(_stdlib_documents())
    return sorted(documents, key=lambda doc: hashlib.sha256(doc[0].encode("utf-8")).hexdigest())


def _topic_documents() -> Iterator[tuple[str, str]]:
    from pydoc_data.topics import topics

    for key in sorted(topics):
        yield from _cut(f"topics/{key}", topics[key].split("\n\n"))


def _stdlib_documents() -> Iterator[tuple[str, str]]:
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    files = sorted(p for p in stdlib.rglob("*.py") if not _SKIPPED_DIRS & set(p.relative_to(stdlib).parts))
    for path in files:
        yield from _cut(f"stdlib/{path.relative_to(stdlib).as_posix()}", _module_paragraphs(path.read_bytes()))


def _module_paragraphs(source: bytes) -> list[str]:
    """A module's docstrings and full-line comment blocks, in source order."""
    pieces: list[tuple[int, str]] = []
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):  # a file this Python cannot parse still has comments
        tree = None
    for node in ast.walk(tree) if tree else ():
        if isinstance(node, _DOCSTRING_OWNERS):
            docstring = ast.get_docstring(node)
            if docstring:
                pieces.append((node.body[0].lineno, docstring))
    pieces.extend(_comment_blocks(source.decode("utf-8", errors="replace")))
    return [text for _, text in sorted(pieces)]


def _comment_blocks(text: str) -> Iterator[tuple[int, str]]:
    """Runs of full-line `#` comments (not shebangs or coding lines; lines without letters end a run)."""
    block: list[str] = []
    start = 0
    for line_number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        comment = stripped.lstrip("#").strip() if stripped.startswith("#") else None
        usable = (comment is not None and not stripped.startswith("#!") and "coding" not in stripped
                  and any(ch.isalpha() for ch in comment))
        if usable:
            if not block:
                start = line_number
            block.append(comment)
        elif block:
            yield start, "\n".join(block)
            block = []
    if block:
        yield start, "\n".join(block)


def _cut(name: str, paragraphs: list[str]) -> Iterator[tuple[str, str]]:
    """Group paragraphs into documents of at most DOC_CHARS characters (a longer paragraph stays whole)."""
    current: list[str] = []
    size = part = 0
    for paragraph in (p.strip() for p in paragraphs):
        if not paragraph:
            continue
        if current and size + len(paragraph) > DOC_CHARS:
            yield f"{name}#{part}", "\n\n".join(current)
            current, size, part = [], 0, part + 1
        current.append(paragraph)
        size += len(paragraph) + 2
    if current:
        yield f"{name}#{part}", "\n\n".join(current)


def corpus_sha256(documents: list[tuple[str, str]]) -> str:
    digest = hashlib.sha256()
    for name, text in documents:
        digest.update(f"{len(name)}:{name}{len(text)}:".encode("utf-8") + text.encode("utf-8"))
    return digest.hexdigest()


# ---- building and caching ------------------------------------------------------------------------

@dataclass(frozen=True)
class ExampleDataset:
    dataset_dir: Path
    tokenizer_path: Path


def example_paths(data_dir: Path, tokenizer: Path | None = None) -> ExampleDataset:
    """Where the example lives: with its own tokenizer, or tokenised with `tokenizer` (a record's own),
    named after that model and the start of its sha256 so that two tokenizers never share a folder."""
    if tokenizer is None:
        return ExampleDataset(dataset_dir=data_dir / "datasets" / EXAMPLE_DATASET_NAME,
                              tokenizer_path=data_dir / "tokenizers" / EXAMPLE_TOKENIZER_NAME)
    name = f"example_{Path(tokenizer).stem}_{file_sha256(Path(tokenizer))[:12]}"
    return ExampleDataset(dataset_dir=data_dir / "datasets" / name, tokenizer_path=data_dir / "tokenizers" / f"{name}.model")


def ensure_example_dataset(data_dir: Path, rebuild: bool = False, tokenizer: Path | None = None) -> ExampleDataset:
    """Return the example dataset's paths, building it first if it is missing, stale or incomplete; with
    `tokenizer`, the example corpus tokenised with that model instead of the example's own."""
    paths = example_paths(data_dir, tokenizer)
    if not rebuild and is_complete(paths):
        return paths
    build_example_dataset(data_dir, tokenizer)
    return paths


def is_complete(paths: ExampleDataset) -> bool:
    """A quick check of a cached build: its manifest is ours and current, its files are all there with
    the recorded sizes, and the tokenizer's sha256 matches (the full check is `harness data verify`)."""
    try:
        manifest = read_manifest(paths.dataset_dir)
    except UserError:
        return False
    build = manifest["build"]
    if build.get("tool") != BUILD_TOOL or build.get("recipe_version") != EXAMPLE_RECIPE_VERSION:
        return False
    for shard in manifest["shards"]:
        path = paths.dataset_dir / shard["name"]
        if not path.is_file() or path.stat().st_size != shard["bytes"]:
            return False
    return paths.tokenizer_path.is_file() and file_sha256(paths.tokenizer_path) == manifest["tokenizer"]["sha256"]


def build_example_dataset(data_dir: Path, tokenizer: Path | None = None) -> dict:
    """Build the example in a temporary directory under `data_dir`, then move it into place: the dataset
    directory (holding the manifest) moves last, so a half-built example never looks complete. Its
    tokenizer is trained on the training documents, or is a copy of `tokenizer`."""
    final = example_paths(data_dir, tokenizer)
    data_dir.mkdir(parents=True, exist_ok=True)
    staging_root = Path(tempfile.mkdtemp(prefix=".example-build-", dir=data_dir))
    staged = ExampleDataset(staging_root / "datasets" / final.dataset_dir.name,
                            staging_root / "tokenizers" / final.tokenizer_path.name)
    try:
        with progress("collecting the example corpus from CPython's own text"):
            documents = example_documents()
        if tokenizer is None:
            with progress(f"training the example's {rules.BASELINE_VOCAB_SIZE}-token tokenizer"):
                train_tokenizer((text for _, text in documents[EXAMPLE_VAL_DOCS:]), staged.tokenizer_path)
            training = {"vocab_size": rules.BASELINE_VOCAB_SIZE, "settings": TOKENIZER_SETTINGS,
                        "documents": "training split only, as paragraphs"}
        else:
            staged.tokenizer_path.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(tokenizer, staged.tokenizer_path)
            training = None
        build_info = {
            "tool": BUILD_TOOL,
            "recipe_version": EXAMPLE_RECIPE_VERSION,
            "harness_version": __version__,
            "python": platform.python_version(),
            "sources": ["pydoc_data.topics", "standard library docstrings and comments"],
            "documents": len(documents),
            "corpus_sha256": corpus_sha256(documents),
            "val_docs": EXAMPLE_VAL_DOCS,
            "tokenizer_trained": tokenizer is None,
            "tokenizer_training": training,
            **({"tokenizer_source": Path(tokenizer).name} if tokenizer is not None else {}),
        }
        manifest = write_dataset(
            (Document(text, len(text.encode("utf-8"))) for _, text in documents), staged.tokenizer_path,
            staged.dataset_dir, name=final.dataset_dir.name, val_docs=EXAMPLE_VAL_DOCS,
            tokenizer_relative_path=relative_path(final.tokenizer_path, final.dataset_dir), build_info=build_info,
            total_source_bytes=sum(len(text.encode("utf-8")) for _, text in documents))
        _move_into_place(staged, final)
    finally:
        shutil.rmtree(staging_root, ignore_errors=True)
    return manifest


def _move_into_place(staged: ExampleDataset, final: ExampleDataset) -> None:
    final.tokenizer_path.parent.mkdir(parents=True, exist_ok=True)
    final.dataset_dir.parent.mkdir(parents=True, exist_ok=True)
    os.replace(staged.tokenizer_path, final.tokenizer_path)
    if final.dataset_dir.exists():
        foreign = [p.name for p in final.dataset_dir.iterdir()
                   if not (p.name == MANIFEST_NAME or (p.name.startswith("fineweb_") and p.suffix == ".bin"))]
        if foreign:
            raise UserError(f"holds files that are not part of the example ({', '.join(sorted(foreign)[:3])}); "
                            "move them away and run `harness data example` again", final.dataset_dir)
        shutil.rmtree(final.dataset_dir)
    os.replace(staged.dataset_dir, final.dataset_dir)
