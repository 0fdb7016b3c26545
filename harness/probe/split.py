"""The probe's dataset: the real training shards, and a validation split drawn from D.

`build_probe_split` fits D on the source dataset's training shards (streams.py), draws the probe stream
(seeded), and lays out `<out>/data/<source name>/`: every `fineweb_train_*.bin` a symlink to the source
shard (never a copy), the stream written as `fineweb_val_*.bin` in the challenge's shard format, so the
script under test reads it exactly as it reads the real split. The dataset keeps the source's folder
name, so that nothing but the tokens differs. The manifest recording D, H(D), the seed and the shards
goes to `<out>/probe_manifest.json`, outside the folder the script is pointed at.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from harness import __version__
from harness.data.shards import ShardWriter, file_sha256, read_shard_header, shard_paths
from harness.errors import UserError
from harness.probe.streams import Chain, fit_chain

DEFAULT_PROBE_TOKENS = 262_145  # 2**18 targets: whole windows for any power-of-two sequence length up to 2**18
MIN_PROBE_TOKENS = 1_025
MANIFEST_NAME = "probe_manifest.json"
MANIFEST_VERSION = 1


@dataclass
class ProbeSplit:
    """The built probe: where its dataset lies, D, the stream and what D pays on it."""

    dataset_dir: Path  # what the script's DATA_PATH points at
    manifest_path: Path
    chain: Chain
    stream: np.ndarray  # the validation tokens, x_0 = BOS
    seed: int
    entropy_rate: float  # H(D), nats per token
    code_lengths: np.ndarray  # -ln P(x_t | x_{t-1}), t = 1..N-1

    @property
    def stream_entropy(self) -> float:
        """D's own mean code length over every target of the stream (nats per token)."""
        return float(self.code_lengths.mean())


def build_probe_split(source_dir: Path, out_dir: Path, kind: str, tokens: int, seed: int, vocab_size: int,
                      bos_id: int) -> ProbeSplit:
    """Fit D on `source_dir`'s training shards, draw `tokens` tokens, and lay out the probe dataset."""
    if tokens < MIN_PROBE_TOKENS:
        raise UserError(f"--tokens {tokens}: a probe stream needs at least {MIN_PROBE_TOKENS:,} tokens")
    train_shards = shard_paths(source_dir, "train")
    if not train_shards:
        raise UserError("holds no fineweb_train_*.bin shards to train on and fit the probe's distribution to",
                        source_dir)
    chain = fit_chain(kind, source_dir, vocab_size, bos_id)
    stream = chain.sample(tokens, seed)
    dataset_dir = out_dir / "data" / source_dir.name
    if dataset_dir.exists():
        shutil.rmtree(dataset_dir)  # an earlier probe's; its train entries are links, their targets untouched
    dataset_dir.mkdir(parents=True)
    for shard in train_shards:
        (dataset_dir / shard.name).symlink_to(shard.resolve())
    writer = ShardWriter(dataset_dir, "val")
    writer.add(stream)
    val_shards = writer.close()
    split = ProbeSplit(dataset_dir, out_dir / MANIFEST_NAME, chain, stream, seed, chain.entropy_rate(),
                       chain.code_lengths(stream))
    _write_manifest(split, source_dir, train_shards, val_shards)
    return split


def _write_manifest(split: ProbeSplit, source_dir: Path, train_shards: list[Path], val_shards: list[Path]) -> None:
    manifest = {
        "probe_manifest_version": MANIFEST_VERSION,
        "harness_version": __version__,
        "stream": split.chain.kind,
        "seed": split.seed,
        "tokens": int(len(split.stream)),
        "documents": int(np.count_nonzero(split.stream == split.chain.bos_id)),
        "entropy_rate_nats": split.entropy_rate,
        "stream_code_length_nats": float(split.code_lengths.sum()),
        "stream_entropy_nats": split.stream_entropy,
        "distribution": split.chain.describe(),
        "source_dataset": str(source_dir.resolve()),
        "dataset_dir": str(split.dataset_dir),
        "train_shards_linked": [path.name for path in train_shards],
        "val_shards": [{"name": path.name, "tokens": read_shard_header(path), "sha256": file_sha256(path)}
                       for path in val_shards],
    }
    partial = split.manifest_path.with_name(MANIFEST_NAME + ".partial")
    partial.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    os.replace(partial, split.manifest_path)
