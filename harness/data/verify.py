"""`harness data verify DIR`: check a dataset directory against its manifest, one finding per check.

Every shard on disk is header-checked (magic, version, declared count vs file size); with a manifest,
each shard's size and sha256 must match its entry, no shard may be missing or unlisted, the splits'
token and document counts (documents = BOS tokens) must match, and the tokenizer must be the one the
manifest names (sha256), with every token id inside its vocabulary. Shards are read once, in chunks.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from harness.data.shards import (HEADER_BYTES, MANIFEST_NAME, SPLITS, TOKEN_DTYPE, file_sha256, manifest_tokenizer_path,
                          read_manifest, read_shard_header, shard_paths)
from harness.data.build import load_tokenizer
from harness.errors import UserError
from harness.findings import FAIL, PASS, SKIP, Verdict, finding
from harness.progress import progress

_CHUNK_BYTES = 1 << 24  # even, so chunks after the 1024-byte header hold whole uint16 tokens


@dataclass
class ShardScan:
    """What one pass over a shard file measured."""

    sha256: str
    bos_count: int
    max_token: int
    first_token: int


def scan_shard(path: Path, bos_id: int, on_bytes: Callable[[int], None] | None = None) -> ShardScan:
    """sha256 of the whole file, and BOS count / largest id / first token of its token part."""
    digest = hashlib.sha256()
    bos_count, max_token, first_token, offset = 0, -1, -1, 0
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK_BYTES):
            digest.update(chunk)
            tokens = np.frombuffer(chunk[max(0, HEADER_BYTES - offset):], dtype=TOKEN_DTYPE)
            if tokens.size:
                first_token = int(tokens[0]) if first_token < 0 else first_token
                bos_count += int(np.count_nonzero(tokens == bos_id))
                max_token = max(max_token, int(tokens.max()))
            offset += len(chunk)
            if on_bytes:
                on_bytes(len(chunk))
    return ShardScan(digest.hexdigest(), bos_count, max_token, first_token)


def verify_dataset(dataset_dir: str | Path, tokenizer: str | Path | None = None) -> Verdict:
    """All findings about `dataset_dir`; `tokenizer` overrides where the manifest says the model lies."""
    dataset_dir = Path(dataset_dir)
    if not dataset_dir.is_dir():
        raise UserError("not a directory", dataset_dir)
    verdict = Verdict(submission=str(dataset_dir), stage="data")
    on_disk = {path.name: (split, path) for split in SPLITS for path in shard_paths(dataset_dir, split)}
    if not any(split == "val" for split, _ in on_disk.values()):
        verdict.findings.append(finding("data.split.present", FAIL, "no validation shards (fineweb_val_*.bin): "
                                        "there is nothing to score val_bpb on", file=str(dataset_dir)))
    headers = _check_headers(on_disk, verdict)
    try:
        manifest = read_manifest(dataset_dir)
    except UserError as error:
        verdict.findings.append(finding("data.manifest", FAIL, _without_path(error),
                                        file=str(dataset_dir / MANIFEST_NAME)))
        _summarise_without_manifest(on_disk, headers, verdict)
        return verdict
    verdict.findings.append(finding("data.manifest", PASS, f"manifest of dataset {manifest['name']!r} is readable "
                                    "and schema-valid", file=str(dataset_dir / MANIFEST_NAME)))
    scans = _check_shards(manifest, on_disk, headers, verdict)
    _check_splits(manifest, on_disk, headers, scans, verdict)
    _check_tokenizer(manifest, dataset_dir, tokenizer, scans, verdict)
    return verdict


def _check_headers(on_disk: dict[str, tuple[str, Path]], verdict: Verdict) -> dict[str, int]:
    """Token count of every shard whose header agrees with its file size; a finding for every other."""
    counts = {}
    for name, (_, path) in on_disk.items():
        try:
            counts[name] = read_shard_header(path)
        except UserError as error:
            verdict.findings.append(finding("data.shard.header", FAIL, _without_path(error), file=str(path)))
    return counts


def _without_path(error: UserError) -> str:
    """The error's sentence without the file name in front (the finding's evidence names the file)."""
    return str(error).removeprefix(f"{error.path}: ") if error.path else str(error)


def _summarise_without_manifest(on_disk, headers, verdict: Verdict) -> None:
    for split in SPLITS:
        names = [n for n, (s, _) in on_disk.items() if s == split]
        if names and all(n in headers for n in names):
            tokens = sum(headers[n] for n in names)
            verdict.findings.append(finding("data.shard.header", PASS, f"{len(names)} {split} shards with sound "
                                            f"headers, {tokens:,} tokens (nothing to compare them with: no manifest)"))


def _check_shards(manifest, on_disk, headers, verdict: Verdict) -> dict[str, ShardScan]:
    entries = {entry["name"]: entry for entry in manifest["shards"]}
    missing = sorted(set(entries) - set(on_disk))
    unlisted = sorted(set(on_disk) - set(entries))
    misfiled = sorted(name for name, entry in entries.items() if not name.startswith(f"fineweb_{entry['split']}_"))
    for check_names, why in ((missing, "listed in the manifest but missing"),
                             (unlisted, "present but not listed in the manifest (it would be read as data)"),
                             (misfiled, "listed under the wrong split")):
        if check_names:
            verdict.findings.append(finding("data.shards.listed", FAIL, f"{len(check_names)} shard(s) {why}: "
                                            + ", ".join(check_names[:5]) + ("..." if len(check_names) > 5 else "")))
    if not (missing or unlisted or misfiled):
        verdict.findings.append(finding("data.shards.listed", PASS, f"the {len(entries)} shards on disk are exactly "
                                        "those the manifest lists"))
    to_scan = [name for name in sorted(entries) if name in headers]
    total = sum(on_disk[name][1].stat().st_size for name in to_scan)
    bos_id = int(manifest["tokenizer"]["bos_id"])
    scans: dict[str, ShardScan] = {}
    bad = 0
    with progress(f"checking {len(to_scan)} shards", total, unit="bytes") as advance:
        for name in to_scan:
            path, entry = on_disk[name][1], entries[name]
            if headers[name] != entry["tokens"] or path.stat().st_size != entry["bytes"]:
                bad += 1
                verdict.findings.append(finding(
                    "data.shard.size", FAIL, f"holds {headers[name]:,} tokens ({path.stat().st_size:,} bytes); the "
                    f"manifest says {entry['tokens']:,} tokens ({entry['bytes']:,} bytes)", file=str(path)))
                advance(path.stat().st_size)
                continue
            scans[name] = scan_shard(path, bos_id, advance)
            if scans[name].sha256 != entry["sha256"]:
                bad += 1
                verdict.findings.append(finding(
                    "data.shard.sha256", FAIL, "sha256 differs from the manifest's: the shard's content changed",
                    file=str(path), actual=scans[name].sha256, expected=entry["sha256"]))
    if to_scan and not bad and len(to_scan) == len(entries):
        verdict.findings.append(finding("data.shards", PASS, f"{len(to_scan)} shards: headers, sizes and sha256 "
                                        "match the manifest"))
    return scans


def _check_splits(manifest, on_disk, headers, scans: dict[str, ShardScan], verdict: Verdict) -> None:
    bos_id = int(manifest["tokenizer"]["bos_id"])
    for split in SPLITS:
        declared = manifest["splits"][split]
        entries = [e for e in manifest["shards"] if e["split"] == split]
        listed_tokens = sum(e["tokens"] for e in entries)
        names = sorted(e["name"] for e in entries)
        if declared["tokens"] != listed_tokens or declared["shards"] != len(entries):
            verdict.findings.append(finding(
                "data.split.tokens", FAIL, f"{split}: the manifest's totals ({declared['tokens']:,} tokens in "
                f"{declared['shards']} shards) disagree with its shard list ({listed_tokens:,} in {len(entries)})"))
            continue
        if not all(name in scans for name in names):
            verdict.findings.append(finding("data.split.tokens", SKIP, f"{split}: not every shard could be read "
                                            "(see the failures above), so the split was not counted"))
            continue
        verdict.findings.append(finding("data.split.tokens", PASS, f"{split}: {listed_tokens:,} tokens in "
                                        f"{len(entries)} shard{'' if len(entries) == 1 else 's'}"))
        verdict.measurements[f"{split}_tokens"] = listed_tokens
        if not names:
            continue
        bos_count = sum(scans[name].bos_count for name in names)
        verdict.measurements[f"{split}_docs"] = bos_count
        first = scans[names[0]].first_token
        if first != bos_id:
            verdict.findings.append(finding("data.split.bos", FAIL, f"{split}: the first token is {first}, not BOS "
                                            f"({bos_id}): documents must start with BOS",
                                            file=str(on_disk[names[0]][1])))
        if declared["docs"] is None:
            verdict.findings.append(finding("data.split.docs", SKIP, f"{split}: the manifest does not record the "
                                            f"number of documents ({bos_count:,} BOS tokens seen)"))
        elif declared["docs"] != bos_count:
            verdict.findings.append(finding("data.split.docs", FAIL, f"{split}: {bos_count:,} documents (BOS "
                                            f"tokens) in the shards, the manifest says {declared['docs']:,}"))
        else:
            verdict.findings.append(finding("data.split.docs", PASS, f"{split}: {bos_count:,} documents, each "
                                            "starting with BOS, as the manifest says"))


def _check_tokenizer(manifest, dataset_dir: Path, override, scans: dict[str, ShardScan], verdict: Verdict) -> None:
    declared = manifest["tokenizer"]
    vocab_size = declared["vocab_size"]
    max_token = max((scan.max_token for scan in scans.values()), default=-1)
    if max_token >= vocab_size:
        verdict.findings.append(finding("data.tokenizer.vocab", FAIL, f"token id {max_token} in the shards is "
                                        f"outside the vocabulary of {vocab_size}"))
    elif scans:
        verdict.findings.append(finding("data.tokenizer.vocab", PASS, f"every token id is below the vocabulary "
                                        f"size {vocab_size} (largest {max_token})"))
    path = Path(override) if override else manifest_tokenizer_path(dataset_dir, manifest)
    if not path.is_file():
        verdict.findings.append(finding("data.tokenizer.sha256", FAIL, f"the tokenizer {declared['file']!r} is not "
                                        "where the manifest says; pass --tokenizer to point at it", file=str(path)))
        return
    sha256 = file_sha256(path)
    if sha256 != declared["sha256"]:
        verdict.findings.append(finding("data.tokenizer.sha256", FAIL, "this tokenizer is not the one the shards "
                                        "were made with (sha256 differs)", file=str(path), actual=sha256,
                                        expected=declared["sha256"]))
        return
    verdict.findings.append(finding("data.tokenizer.sha256", PASS, "the tokenizer is the one the manifest names",
                                    file=str(path)))
    model_vocab = _sentencepiece_vocab_size(path)
    if model_vocab is not None and model_vocab != vocab_size:
        verdict.findings.append(finding("data.tokenizer.model", FAIL, f"the model's vocabulary is {model_vocab}, "
                                        f"the manifest says {vocab_size}", file=str(path)))


def _sentencepiece_vocab_size(path: Path) -> int | None:
    """The model's vocabulary size, or None when the tokenizer is not a SentencePiece model (byte260's
    tokenizer is a JSON file; the manifest's vocab_size is all there is to go by)."""
    try:
        return int(load_tokenizer(path).vocab_size())
    except UserError:
        return None
