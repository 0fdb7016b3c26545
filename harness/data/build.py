"""Build a dataset in the challenge's format from text: documents in, tokenizer (trained or given), shards out.

What the challenge's export does, and so what this does (RULES.md R3.3): every document is tokenised on
its own, prefixed by the BOS id and given no EOS; the validation split is the first N documents, the
training split the rest; shards are cut by size, so a document may straddle two shards.

Sources: `--text` files are one document each (a file is the unit a user can name; split a corpus into
files, or use JSONL, to get many documents); `--jsonl` files hold one JSON object per line with a
"text" key, the challenge's docs_selected.jsonl format. Blank JSONL lines are skipped.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np

from harness import __version__, rules
from harness.data.shards import (MANIFEST_NAME, SPLITS, ShardWriter, make_manifest, shard_record, tokenizer_record,
                          write_manifest)
from harness.errors import UserError
from harness.progress import progress

# The trainer and normaliser settings serialised in the challenge's fineweb_1024_bpe.model (its
# TrainerSpec and NormalizerSpec). Note byte_fallback: the published model has it off (no <0xNN>
# pieces; characters outside the 0.999 coverage become <unk>), although the export script in the
# challenge repository passes True; we match the model everyone trains and is scored with.
TOKENIZER_SETTINGS: dict[str, Any] = {
    "model_type": "bpe",
    "character_coverage": 0.999,
    "byte_fallback": False,
    "split_digits": True,
    "normalization_rule_name": "nmt_nfkc",
    "add_dummy_prefix": False,
    "hard_vocab_limit": False,
    "pad_id": rules.PAD_ID,
    "bos_id": rules.BOS_ID,
    "eos_id": rules.EOS_ID,
    "unk_id": rules.UNK_ID,
}
_ENCODE_BATCH_DOCS = 256
_DATASET_FILES = ("fineweb_val_*.bin", "fineweb_train_*.bin", MANIFEST_NAME)


@dataclass(frozen=True)
class Document:
    text: str
    source_bytes: int  # bytes of the source this document came from (for progress)


# ---- documents -----------------------------------------------------------------------------------

def text_documents(paths: Iterable[str | Path]) -> Iterator[Document]:
    """One document per file, its whole UTF-8 text."""
    for path in paths:
        try:
            raw = Path(path).read_bytes()
            yield Document(raw.decode("utf-8"), len(raw))
        except FileNotFoundError:
            raise UserError("text file not found", path) from None
        except UnicodeDecodeError as error:
            raise UserError(f"not UTF-8 text (byte {error.start})", path) from None
        except OSError as error:
            raise UserError(f"cannot read the text file ({error.strerror})", path) from None


def jsonl_documents(paths: Iterable[str | Path]) -> Iterator[Document]:
    """One document per non-blank line: a JSON object whose "text" is a string."""
    for path in paths:
        try:
            handle = open(path, "rb")
        except FileNotFoundError:
            raise UserError("JSONL file not found", path) from None
        except OSError as error:
            raise UserError(f"cannot read the JSONL file ({error.strerror})", path) from None
        with handle:
            for line_number, raw in enumerate(handle, start=1):
                if raw.strip():
                    yield Document(_jsonl_text(raw, f"{path}:{line_number}"), len(raw))


def _jsonl_text(raw: bytes, where: str) -> str:
    try:
        record = json.loads(raw)
    except UnicodeDecodeError:
        raise UserError("not UTF-8 text", where) from None
    except json.JSONDecodeError as error:
        raise UserError(f"not a JSON object ({error.msg})", where) from None
    if not isinstance(record, dict) or not isinstance(record.get("text"), str):
        raise UserError('expected a JSON object with a string "text"', where)
    return record["text"]


def source_bytes(paths: Iterable[str | Path]) -> int:
    return sum(Path(p).stat().st_size for p in paths)


# ---- tokenizer -----------------------------------------------------------------------------------

def tokenizer_training_sentences(texts: Iterable[str]) -> Iterator[str]:
    """Paragraphs of the documents, the sentences the SentencePiece trainer sees.

    Why paragraphs: the trainer skips any sentence longer than its max_sentence_length (4,192 bytes),
    and whole documents often are. NUL is not valid trainer input.
    """
    for text in texts:
        for paragraph in text.replace("\x00", " ").split("\n\n"):
            paragraph = paragraph.strip()
            if paragraph:
                yield paragraph


def train_tokenizer(texts: Iterable[str], model_path: str | Path, vocab_size: int = rules.BASELINE_VOCAB_SIZE,
                    **overrides: Any) -> Path:
    """Train a SentencePiece BPE model with the challenge's settings and write it to `model_path`."""
    import sentencepiece as spm

    model = io.BytesIO()
    settings = {**TOKENIZER_SETTINGS, **overrides}
    try:
        spm.SentencePieceTrainer.train(sentence_iterator=tokenizer_training_sentences(texts), model_writer=model,
                                       vocab_size=vocab_size, minloglevel=2, **settings)
    except RuntimeError as error:  # too little text for the vocabulary, typically
        raise UserError(f"SentencePiece could not train a {vocab_size}-token tokenizer: {error}",
                        model_path) from None
    model_path = Path(model_path)
    model_path.parent.mkdir(parents=True, exist_ok=True)
    partial = model_path.with_name(model_path.name + ".partial")
    partial.write_bytes(model.getvalue())
    os.replace(partial, model_path)
    return model_path


def load_tokenizer(model_path: str | Path):
    """A SentencePieceProcessor for `model_path`; UserError if it is missing or not a model."""
    import sentencepiece as spm

    if not Path(model_path).is_file():
        raise UserError("tokenizer model not found", model_path)
    try:
        return spm.SentencePieceProcessor(model_file=str(model_path))
    except (RuntimeError, OSError) as error:
        raise UserError(f"not a SentencePiece model ({error})", model_path) from None


# ---- shards --------------------------------------------------------------------------------------

def write_dataset(documents: Iterable[Document], tokenizer_path: Path, dataset_dir: Path, *, name: str,
                  val_docs: int, tokenizer_relative_path: str, build_info: dict[str, Any],
                  shard_tokens: int = rules.SHARD_TOKENS_MAX, total_source_bytes: int | None = None) -> dict:
    """Tokenise `documents` into shards and a manifest in `dataset_dir` (which should be empty)."""
    processor = load_tokenizer(tokenizer_path)
    if processor.bos_id() != rules.BOS_ID:
        raise UserError(f"the tokenizer's BOS id is {processor.bos_id()}; the challenge's shards use "
                        f"{rules.BOS_ID}", tokenizer_path)
    if processor.vocab_size() > np.iinfo(np.uint16).max + 1:
        raise UserError(f"vocabulary of {processor.vocab_size()} does not fit uint16 shards", tokenizer_path)
    dataset_dir.mkdir(parents=True, exist_ok=True)
    writers = {split: ShardWriter(dataset_dir, split, shard_tokens) for split in SPLITS}
    doc_counts = {split: 0 for split in SPLITS}
    threads = os.cpu_count() or 1
    with progress(f"tokenising into {dataset_dir.name}", total_source_bytes, unit="bytes") as advance:
        for batch in _batches(documents, _ENCODE_BATCH_DOCS):
            encoded = processor.encode([doc.text for doc in batch], num_threads=threads)
            for doc, ids in zip(batch, encoded):
                split = "val" if doc_counts["val"] < val_docs else "train"
                tokens = np.empty(len(ids) + 1, dtype=np.uint16)
                tokens[0] = rules.BOS_ID
                tokens[1:] = ids
                writers[split].add(tokens)
                doc_counts[split] += 1
                advance(doc.source_bytes)
    if doc_counts["val"] < val_docs:
        raise UserError(f"only {doc_counts['val']} documents, fewer than the {val_docs} asked for validation")
    paths = {split: writer.close() for split, writer in writers.items()}
    tokenizer = tokenizer_record(tokenizer_path, tokenizer_relative_path)
    shards = [shard_record(path, split) for split in SPLITS for path in paths[split]]
    manifest = make_manifest(name, tokenizer, shards, doc_counts, build_info)
    write_manifest(dataset_dir, manifest)
    return manifest


def _batches(documents: Iterable[Document], size: int) -> Iterator[list[Document]]:
    batch: list[Document] = []
    for doc in documents:
        batch.append(doc)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


# ---- the `harness data build` pipeline ------------------------------------------------------------

def build_dataset(*, text_files: list[str] | None = None, jsonl_files: list[str] | None = None,
                  tokenizer: str | Path, out: str | Path, val_docs: int, train: bool = False,
                  vocab_size: int = rules.BASELINE_VOCAB_SIZE, shard_tokens: int = rules.SHARD_TOKENS_MAX,
                  force: bool = False) -> dict:
    """Build `out` from text or JSONL files; with `train`, first train the tokenizer into `tokenizer`.

    The dataset is written to a temporary sibling directory and renamed into place at the end, so an
    interrupted build never leaves a directory that looks complete.
    """
    if bool(text_files) == bool(jsonl_files):
        raise UserError("give documents either as --text files or as --jsonl files")
    if val_docs < 1 or shard_tokens <= 0:
        raise UserError("--val-docs must be at least 1 (val_bpb is scored on them) and --shard-tokens positive")
    kind, files = ("text", text_files) if text_files else ("jsonl", jsonl_files)
    for file in files:
        if not Path(file).is_file():
            raise UserError(f"{kind} file not found", file)
    read = text_documents if kind == "text" else jsonl_documents
    out, tokenizer = Path(out), Path(tokenizer)
    _check_replaceable(out, force)
    if train:
        if tokenizer.exists() and not force:
            raise UserError("tokenizer already exists; pass --force to retrain it", tokenizer)
        train_docs = (doc.text for index, doc in enumerate(read(files)) if index >= val_docs)
        with progress(f"training a {vocab_size}-token tokenizer"):
            train_tokenizer(train_docs, tokenizer, vocab_size)
    build_info = {
        "tool": "harness data build",
        "harness_version": __version__,
        "sources": [{"kind": kind, "file": Path(f).name, "bytes": Path(f).stat().st_size} for f in files],
        "val_docs": val_docs,
        "shard_tokens": shard_tokens,
        "tokenizer_trained": bool(train),
        "tokenizer_training": {"vocab_size": vocab_size, "settings": TOKENIZER_SETTINGS,
                               "documents": "training split only, as paragraphs"} if train else None,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    try:
        manifest = write_dataset(read(files), tokenizer, staging, name=out.name, val_docs=val_docs,
                                 tokenizer_relative_path=relative_path(tokenizer, out), build_info=build_info,
                                 shard_tokens=shard_tokens, total_source_bytes=source_bytes(files))
        if out.exists():
            shutil.rmtree(out)
        os.replace(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return manifest


def relative_path(target: Path, start: Path) -> str:
    """`target` relative to directory `start` (neither needs to exist yet)."""
    return os.path.relpath(Path(target).resolve(), Path(start).resolve())


def _check_replaceable(out: Path, force: bool) -> None:
    """A dataset directory may be replaced only with --force, and only if it holds nothing but a dataset."""
    if not out.exists():
        return
    if not out.is_dir():
        raise UserError("exists and is not a directory", out)
    entries = list(out.iterdir())
    if not entries:
        return
    if not force:
        raise UserError("already holds files; pass --force to replace the dataset", out)
    foreign = [e.name for e in entries if not any(e.match(pattern) for pattern in _DATASET_FILES)]
    if foreign:
        raise UserError(f"holds files that are not part of a dataset ({', '.join(sorted(foreign)[:3])}); "
                        "refusing to replace it", out)
