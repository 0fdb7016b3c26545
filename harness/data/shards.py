"""Datasets in the challenge's format: shards, their paths, the manifest beside them.

A shard is 256 little-endian int32 (magic, version, token count, zeros) followed by that many uint16
tokens (RULES.md R3.3). Shards are read memory-mapped after checking the header against the file size,
so a truncated or foreign file is refused with one sentence naming it, never half-read.

A dataset directory holds `fineweb_val_*.bin`, `fineweb_train_*.bin` and `manifest.json`, which records
what the shards must be (token counts, sha256, the tokenizer's file and sha256, how they were built) so
that `harness data verify` can check them. Building lives in build.py, checking in verify.py, the
bundled example in example.py, where datasets are found in location.py.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

from harness import rules
from harness.errors import UserError
from harness.schemas import validation_errors

SPLITS = ("val", "train")  # val first: the export writes the validation documents first
HEADER_DTYPE = np.dtype("<i4")
TOKEN_DTYPE = np.dtype(rules.SHARD_TOKEN_DTYPE)
HEADER_BYTES = rules.SHARD_HEADER_INTS * HEADER_DTYPE.itemsize
MANIFEST_NAME = "manifest.json"
MANIFEST_VERSION = 1
_HASH_CHUNK_BYTES = 1 << 24


# ---- shard paths ---------------------------------------------------------------------------------

def shard_name(split: str, index: int) -> str:
    """`fineweb_val_000000.bin`: the challenge's names, zero-padded so name order is shard order."""
    _check_split(split)
    return f"fineweb_{split}_{index:06d}.bin"


def shard_glob(dataset_dir: str | Path, split: str) -> str:
    """The glob pattern the challenge's trainers take (e.g. for DATA_PATH-derived patterns)."""
    _check_split(split)
    return str(Path(dataset_dir) / f"fineweb_{split}_*.bin")


def shard_paths(dataset_dir: str | Path, split: str) -> list[Path]:
    """The split's shard files in sorted order (the order the trainers concatenate them in)."""
    _check_split(split)
    return sorted(Path(dataset_dir).glob(f"fineweb_{split}_*.bin"))


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")


# ---- shard format --------------------------------------------------------------------------------

def write_shard(path: str | Path, tokens: Any) -> int:
    """Write `tokens` (ints in [0, 65535]) as one shard; returns the token count."""
    array = np.asarray(tokens)
    if array.ndim != 1:
        raise ValueError(f"a shard holds a 1-D token array, got shape {array.shape}")
    if array.size >= 2**31:
        raise ValueError(f"{array.size} tokens do not fit the header's int32 count")
    if array.dtype != TOKEN_DTYPE:
        if array.size and (not np.issubdtype(array.dtype, np.integer) or array.min() < 0
                           or array.max() > np.iinfo(np.uint16).max):
            raise ValueError("shard tokens must be integers in [0, 65535]")
        array = array.astype(TOKEN_DTYPE)
    header = np.zeros(rules.SHARD_HEADER_INTS, dtype=HEADER_DTYPE)
    header[0], header[1], header[2] = rules.SHARD_MAGIC, rules.SHARD_VERSION, array.size
    with open(path, "wb") as handle:
        handle.write(header.tobytes())
        handle.write(array.tobytes())
    return int(array.size)


def read_shard_header(path: str | Path) -> int:
    """Check a shard's header against its file size; return its token count. UserError on any mismatch."""
    path = Path(path)
    try:
        size = path.stat().st_size
        with open(path, "rb") as handle:
            raw = handle.read(HEADER_BYTES)
    except FileNotFoundError:
        raise UserError("shard not found", path) from None
    except OSError as error:
        raise UserError(f"cannot read the shard ({error.strerror})", path) from None
    if size < HEADER_BYTES:
        raise UserError(f"only {size} bytes, shorter than the {HEADER_BYTES}-byte shard header: "
                        "truncated or not a shard", path)
    magic, version, token_count = (int(v) for v in np.frombuffer(raw, dtype=HEADER_DTYPE)[:3])
    if magic != rules.SHARD_MAGIC:
        raise UserError(f"magic number {magic}, expected {rules.SHARD_MAGIC}: not a challenge shard", path)
    if version != rules.SHARD_VERSION:
        raise UserError(f"shard format version {version}, expected {rules.SHARD_VERSION}", path)
    if token_count <= 0:
        raise UserError(f"header declares {token_count} tokens: an empty or corrupt shard "
                        "(the export never writes an empty one)", path)
    payload = size - HEADER_BYTES
    if payload % TOKEN_DTYPE.itemsize:
        raise UserError(f"{payload:,} bytes after the header, an odd number: not whole uint16 tokens "
                        "(truncated?)", path)
    held = payload // TOKEN_DTYPE.itemsize
    if held != token_count:
        why = "truncated" if held < token_count else "extra bytes after the declared tokens"
        raise UserError(f"header declares {token_count:,} tokens but the file holds {held:,}: {why}", path)
    return token_count


def read_shard(path: str | Path) -> np.ndarray:
    """The shard's tokens as a read-only uint16 memmap, after the header checks of read_shard_header."""
    token_count = read_shard_header(path)
    return np.memmap(path, dtype=TOKEN_DTYPE, mode="r", offset=HEADER_BYTES, shape=(token_count,))


def load_tokens(dataset_dir: str | Path, split: str) -> np.ndarray:
    """All tokens of a split, shards concatenated in sorted order (a memmap when there is one shard).

    Meant for validation splits and small datasets; stream large training splits shard by shard.
    """
    paths = shard_paths(dataset_dir, split)
    if not paths:
        raise UserError(f"no {split} shards (fineweb_{split}_*.bin) in this directory", dataset_dir)
    shards = [read_shard(path) for path in paths]
    return shards[0] if len(shards) == 1 else np.concatenate(shards)


class ShardWriter:
    """Streams documents' tokens into consecutive shards of at most `shard_tokens` tokens each.

    Like the challenge's export, a document may straddle two shards: shards are cut by size only.
    """

    def __init__(self, dataset_dir: Path, split: str, shard_tokens: int = rules.SHARD_TOKENS_MAX) -> None:
        if shard_tokens <= 0:
            raise ValueError(f"shard_tokens must be positive, got {shard_tokens}")
        _check_split(split)
        self.dataset_dir, self.split, self.shard_tokens = Path(dataset_dir), split, shard_tokens
        self.paths: list[Path] = []
        self._pending: list[np.ndarray] = []
        self._pending_count = 0

    def add(self, tokens: np.ndarray) -> None:
        position = 0
        while position < len(tokens):
            take = min(self.shard_tokens - self._pending_count, len(tokens) - position)
            self._pending.append(tokens[position:position + take])
            self._pending_count += take
            position += take
            if self._pending_count == self.shard_tokens:
                self._flush()

    def close(self) -> list[Path]:
        self._flush()
        return self.paths

    def _flush(self) -> None:
        if not self._pending_count:
            return
        path = self.dataset_dir / shard_name(self.split, len(self.paths))
        write_shard(path, np.concatenate(self._pending).astype(TOKEN_DTYPE))
        self.paths.append(path)
        self._pending, self._pending_count = [], 0


# ---- checksums and the manifest ------------------------------------------------------------------

def file_sha256(path: str | Path, on_bytes: Callable[[int], None] | None = None) -> str:
    """Hex sha256 of a file, read in chunks; `on_bytes` hears how many bytes each chunk held."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_HASH_CHUNK_BYTES):
            digest.update(chunk)
            if on_bytes:
                on_bytes(len(chunk))
    return digest.hexdigest()


def shard_record(path: Path, split: str, sha256: str | None = None) -> dict[str, Any]:
    """The manifest's entry for one shard (header-checked; sha256 computed unless given)."""
    return {
        "name": path.name,
        "split": split,
        "tokens": read_shard_header(path),
        "bytes": path.stat().st_size,
        "sha256": sha256 or file_sha256(path),
    }


def tokenizer_record(tokenizer_path: Path, relative_path: str) -> dict[str, Any]:
    """The manifest's tokenizer entry: file name, `relative_path` (from the dataset directory to the
    tokenizer where it will finally lie), sha256, vocabulary size and ids."""
    import sentencepiece as spm

    processor = spm.SentencePieceProcessor(model_file=str(tokenizer_path))
    return {
        "file": tokenizer_path.name,
        "path": relative_path,
        "sha256": file_sha256(tokenizer_path),
        "vocab_size": int(processor.vocab_size()),
        "bos_id": int(processor.bos_id()),
        "eos_id": int(processor.eos_id()),
    }


def make_manifest(name: str, tokenizer: dict[str, Any], shards: Iterable[dict[str, Any]],
                  split_docs: dict[str, int | None], build: dict[str, Any]) -> dict[str, Any]:
    """A manifest from its parts; split totals are summed from the shard entries."""
    shards = list(shards)
    splits = {}
    for split in SPLITS:
        entries = [s for s in shards if s["split"] == split]
        splits[split] = {
            "shards": len(entries),
            "tokens": sum(s["tokens"] for s in entries),
            "docs": split_docs.get(split),
        }
    return {
        "manifest_version": MANIFEST_VERSION,
        "name": name,
        "shard_format": {
            "magic": rules.SHARD_MAGIC,
            "version": rules.SHARD_VERSION,
            "header_ints": rules.SHARD_HEADER_INTS,
            "token_dtype": rules.SHARD_TOKEN_DTYPE,
        },
        "documents": {"bos_prepended": True, "eos_appended": False},
        "tokenizer": tokenizer,
        "splits": splits,
        "shards": shards,
        "build": build,
    }


def write_manifest(dataset_dir: str | Path, manifest: dict[str, Any]) -> Path:
    """Write manifest.json (validated against harness/schemas/dataset_manifest.schema.json) atomically."""
    errors = validation_errors(manifest, "dataset_manifest")
    if errors:  # our own writer breaking our own schema is a bug
        raise AssertionError("manifest does not match harness/schemas/dataset_manifest.schema.json: " + "; ".join(errors))
    path = Path(dataset_dir) / MANIFEST_NAME
    partial = path.with_name(MANIFEST_NAME + ".partial")
    partial.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    os.replace(partial, path)
    return path


def read_manifest(dataset_dir: str | Path) -> dict[str, Any]:
    """Load and schema-check a dataset's manifest.json; UserError naming the file when it is unusable."""
    path = Path(dataset_dir) / MANIFEST_NAME
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError("no manifest.json: build the dataset with `harness data build`, "
                        "or download it with `harness data download`", path) from None
    except (OSError, UnicodeDecodeError) as error:
        raise UserError(f"cannot read the manifest ({error})", path) from None
    except json.JSONDecodeError as error:
        raise UserError(f"not valid JSON (line {error.lineno}: {error.msg})", path) from None
    errors = validation_errors(manifest, "dataset_manifest")
    if errors:
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise UserError(f"not a dataset manifest: {errors[0]}{more}", path)
    return manifest


def manifest_tokenizer_path(dataset_dir: str | Path, manifest: dict[str, Any]) -> Path:
    """Where the manifest says the tokenizer lies (its path is relative to the dataset directory)."""
    return Path(os.path.normpath(Path(dataset_dir) / manifest["tokenizer"]["path"]))
