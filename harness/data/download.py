"""`harness data download`: the challenge's published shards and tokenizer, from the Hugging Face Hub.

Follows the challenge's own downloader (RULES.md R7): the dataset repository `willdepueoai/parameter-golf`
(or $MATCHED_FINEWEB_REPO_ID), rooted at `datasets/` (or $MATCHED_FINEWEB_REMOTE_ROOT_PREFIX); its
manifest.json says how many shards each variant has and which tokenizer files go with it. Files land
where the challenge's scripts expect them: <data-dir>/datasets/<name>/ and <data-dir>/tokenizers/.

Resumable: a file already present is kept when it checks out (shard header and size; sha256 where the
published manifest or our own earlier manifest gives one), otherwise fetched again. Each fetched file
is checked before it is moved into place. At the end our manifest.json is written beside the shards, so
`harness data verify` can check them later. The network call is one injectable function (`fetch`).
"""

from __future__ import annotations

import json
import os
import posixpath
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from harness import __version__, rules
from harness.data.shards import (MANIFEST_NAME, file_sha256, make_manifest, read_manifest, read_shard_header, shard_name,
                          write_manifest)
from harness.data.build import load_tokenizer, relative_path
from harness.errors import UserError
from harness.progress import progress

DEFAULT_REPO_ID = "willdepueoai/parameter-golf"  # RULES.md R7
DEFAULT_REMOTE_ROOT = "datasets"
REPO_ENV, REMOTE_ROOT_ENV = "MATCHED_FINEWEB_REPO_ID", "MATCHED_FINEWEB_REMOTE_ROOT_PREFIX"
DEFAULT_TRAIN_SHARDS = 80  # the challenge downloader's default: 8B training tokens (data/README.md)
DOCS_FILES = ("docs_selected.jsonl", "docs_selected.source_manifest.json")

Fetch = Callable[[str, str, Path], Path]  # (repo_id, remote path, staging dir) -> the file, ours to move
STAGING_DIR = ".download"  # under the data directory: same disk, so placing a file is a rename


def hf_fetch(repo_id: str, remote_path: str, staging_dir: Path) -> Path:
    """Fetch one file of the dataset repository through huggingface_hub, into `staging_dir` rather than
    the shared cache: the file is then ours to move, with no second copy of multi-GB shards and no link
    that would tie our data/ to the cache. huggingface_hub resumes interrupted files there."""
    try:
        from huggingface_hub import hf_hub_download
    except ImportError:
        raise UserError("downloading needs huggingface_hub: pip install huggingface_hub") from None
    folder, name = posixpath.split(remote_path)
    try:
        fetched = hf_hub_download(repo_id=repo_id, filename=name, subfolder=folder or None, repo_type="dataset",
                                  local_dir=staging_dir)
    except Exception as error:  # noqa: BLE001 - one third-party network call: every failure is the user's to fix
        reason = (str(error).strip().splitlines() or [""])[0][:200]
        raise UserError(f"cannot download {remote_path} from the Hugging Face dataset {repo_id} "
                        f"({type(error).__name__}: {reason}); check the network connection") from None
    return Path(fetched)


@dataclass
class RemoteFile:
    remote: str  # path in the dataset repository
    local: Path
    split: str | None = None  # for shards
    sha256: str | None = None  # expected, where known


@dataclass
class DownloadReport:
    dataset_dir: Path
    tokenizer_path: Path
    fetched: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    manifest: dict[str, Any] = field(default_factory=dict)


def dataset_name(variant: str) -> str:
    """sp1024 -> fineweb10B_sp1024; byte260 -> fineweb10B_byte260 (the challenge's names)."""
    if variant == "byte260" or (variant.startswith("sp") and variant[2:].isdigit()):
        return f"fineweb10B_{variant}"
    raise UserError(f"unknown variant {variant!r}: expected sp<VOCAB> (sp1024, sp4096, sp8192) or byte260")


def remote_settings() -> tuple[str, str]:
    """(repository id, remote root prefix), overridable by the challenge's environment variables."""
    return (os.environ.get(REPO_ENV) or DEFAULT_REPO_ID,
            os.environ.get(REMOTE_ROOT_ENV, DEFAULT_REMOTE_ROOT).strip("/"))


def local_path(data_dir: Path, remote_root: str, remote_path: str) -> Path:
    """Where a repository file goes locally: the remote root is dropped, datasets/ and tokenizers/ keep
    their place under the data directory (as the challenge's downloader does)."""
    parts = Path(remote_path).parts
    if remote_root and parts[:len(Path(remote_root).parts)] == Path(remote_root).parts:
        parts = parts[len(Path(remote_root).parts):]
    return data_dir.joinpath(*parts)


def download(variant: str = "sp1024", train_shards: int = DEFAULT_TRAIN_SHARDS, data_dir: str | Path = "data", *,
             fetch: Fetch | None = None, with_docs: bool = False, refresh_manifest: bool = False) -> DownloadReport:
    """Fetch the variant's validation shards, its first `train_shards` training shards and its tokenizer.
    `fetch` defaults to hf_fetch (the network); tests pass a fake."""
    fetch = fetch or hf_fetch
    if train_shards < 0:
        raise UserError("--train-shards must be >= 0")
    repo_id, remote_root = remote_settings()
    data_dir = Path(data_dir)
    name = dataset_name(variant)
    published = _published_manifest(data_dir, repo_id, remote_root, fetch, refresh_manifest)
    entry, tokenizer_entry = _entries(published, name, data_dir / MANIFEST_NAME)
    stats = entry.get("stats") or {}
    val_count, train_count = _count(stats, "files_val"), _count(stats, "files_train")
    if train_shards > train_count:
        raise UserError(f"{variant} has {train_count} training shards on {repo_id}; {train_shards} were asked for")
    dataset_dir = data_dir / "datasets" / name
    known = {**_earlier_sha256(dataset_dir), **_published_sha256(entry), **_published_sha256(tokenizer_entry)}

    def remote(path: str) -> str:
        return posixpath.join(remote_root, path) if remote_root else path

    counts = (("val", val_count), ("train", train_shards))
    shards = [(split, index) for split, count in counts for index in range(count)]
    files = [RemoteFile(remote(f"datasets/{name}/{shard_name(split, i)}"), dataset_dir / shard_name(split, i), split)
             for split, i in shards]
    files += [RemoteFile(remote(p), local_path(data_dir, remote_root, remote(p))) for p in _artifacts(tokenizer_entry)]
    files += [RemoteFile(remote(p), local_path(data_dir, remote_root, remote(p))) for p in DOCS_FILES if with_docs]
    for item in files:
        item.sha256 = known.get(item.local.name)

    report = DownloadReport(dataset_dir, files[len(shards)].local)
    with progress(f"downloading {name} ({val_count} val + {train_shards} train shards)", len(files)) as advance:
        for item in files:
            if _usable(item):
                report.kept.append(item.remote)
            else:
                _fetch_into_place(item, repo_id, fetch, data_dir / STAGING_DIR)
                report.fetched.append(item.remote)
            advance(1)
    shutil.rmtree(data_dir / STAGING_DIR, ignore_errors=True)  # only huggingface_hub's bookkeeping is left
    report.manifest = _write_local_manifest(report, files[:len(shards)], tokenizer_entry, stats, entry,
                                            repo_id=repo_id, remote_root=remote_root, variant=variant,
                                            all_train=train_shards == train_count)
    return report


def _published_manifest(data_dir: Path, repo_id: str, remote_root: str, fetch: Fetch, refresh: bool) -> dict:
    remote = posixpath.join(remote_root, MANIFEST_NAME) if remote_root else MANIFEST_NAME
    path = local_path(data_dir, remote_root, remote)
    if refresh or not path.is_file():
        _fetch_into_place(RemoteFile(remote, path), repo_id, fetch, data_dir / STAGING_DIR)
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise UserError(f"the published manifest is unreadable ({error}); delete it to fetch it again", path) from None
    if not isinstance(manifest, dict):
        raise UserError("the published manifest is not a JSON object; delete it to fetch it again", path)
    return manifest


def _entries(published: dict, name: str, where: Path) -> tuple[dict, dict]:
    entry = next((d for d in published.get("datasets") or [] if isinstance(d, dict) and d.get("name") == name), None)
    if entry is None:
        raise UserError(f"dataset {name} is not in the published manifest", where)
    tokenizer_name = entry.get("tokenizer_name")
    tokenizer = next((t for t in published.get("tokenizers") or []
                      if isinstance(t, dict) and t.get("name") == tokenizer_name), None)
    if tokenizer is None:
        raise UserError(f"tokenizer {tokenizer_name!r} of dataset {name} is not in the published manifest", where)
    return entry, tokenizer


def _count(stats: dict, key: str) -> int:
    value = stats.get(key)
    if not isinstance(value, int) or value < 0:
        raise UserError(f"the published manifest gives no usable stats.{key} ({value!r})")
    return value


def _artifacts(tokenizer_entry: dict) -> list[str]:
    """The tokenizer's files, model first (the challenge's keys: model_path, vocab_path, path)."""
    paths = [str(tokenizer_entry[key]) for key in ("model_path", "vocab_path", "path") if tokenizer_entry.get(key)]
    if not paths:
        raise UserError(f"the published manifest lists no files for tokenizer {tokenizer_entry.get('name')!r}")
    return paths


def _published_sha256(entry: dict) -> dict[str, str]:
    """sha256 digests a manifest entry gives, by file name. The challenge's export writes none today; a
    mirror may add a "sha256" map (file name -> digest) or "files" records with "sha256"."""
    digests = {}
    if isinstance(entry.get("sha256"), dict):
        digests.update({Path(k).name: str(v) for k, v in entry["sha256"].items()})
    for record in entry.get("files") or []:
        if isinstance(record, dict) and record.get("sha256") and (record.get("name") or record.get("path")):
            digests[Path(str(record.get("name") or record.get("path"))).name] = str(record["sha256"])
    return digests


def _earlier_sha256(dataset_dir: Path) -> dict[str, str]:
    """Digests our own manifest recorded on an earlier run: a file kept on resume must still match them."""
    try:
        manifest = read_manifest(dataset_dir)
    except UserError:
        return {}
    digests = {shard["name"]: shard["sha256"] for shard in manifest["shards"]}
    digests[manifest["tokenizer"]["file"]] = manifest["tokenizer"]["sha256"]
    return digests


def _problem(path: Path, item: RemoteFile) -> str | None:
    """Why the file at `path` is not a good copy of `item`, or None when it is."""
    if item.split is not None:
        try:
            read_shard_header(path)
        except UserError as error:
            return str(error)
    if item.sha256 and file_sha256(path) != item.sha256:
        return f"{path}: sha256 differs from the expected {item.sha256}"
    return None


def _usable(item: RemoteFile) -> bool:
    return item.local.is_file() and _problem(item.local, item) is None


def _fetch_into_place(item: RemoteFile, repo_id: str, fetch: Fetch, staging_dir: Path) -> None:
    item.local.parent.mkdir(parents=True, exist_ok=True)
    partial = item.local.with_name(item.local.name + ".partial")
    shutil.move(fetch(repo_id, item.remote, staging_dir), partial)  # a rename on the same disk
    problem = _problem(partial, item)
    if problem:
        partial.unlink()
        raise UserError(f"the downloaded {item.remote} is not right ({problem}); run the download again")
    os.replace(partial, item.local)


def _write_local_manifest(report: DownloadReport, shard_files: list[RemoteFile], tokenizer_entry: dict,
                          stats: dict, entry: dict, **source: Any) -> dict:
    shards = []
    with progress("recording sha256 of the shards", sum(f.local.stat().st_size for f in shard_files),
                  unit="bytes") as advance:
        for item in shard_files:
            digest = item.sha256 or file_sha256(item.local, advance)
            shards.append({"name": item.local.name, "split": item.split, "tokens": read_shard_header(item.local),
                           "bytes": item.local.stat().st_size, "sha256": digest})
    tokenizer = {
        "file": report.tokenizer_path.name,
        "path": relative_path(report.tokenizer_path, report.dataset_dir),
        "sha256": file_sha256(report.tokenizer_path),
        "vocab_size": _int(tokenizer_entry.get("vocab_size") or entry.get("vocab_size"))
        or int(load_tokenizer(report.tokenizer_path).vocab_size()),
        "bos_id": int(tokenizer_entry.get("bos_id", entry.get("bos_id", rules.BOS_ID))),
        "eos_id": int(tokenizer_entry.get("eos_id", entry.get("eos_id", rules.EOS_ID))),
    }
    docs = {"val": _int(stats.get("docs_val")), "train": _int(stats.get("docs_train")) if source["all_train"] else None}
    build = {"tool": "harness data download", "harness_version": __version__, **source, "published_stats": stats}
    manifest = make_manifest(report.dataset_dir.name, tokenizer, shards, docs, build)
    write_manifest(report.dataset_dir, manifest)
    return manifest


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
