"""Where datasets are: the data directory, and the dataset folder plus tokenizer a command should use.

A command given no `--data` uses the bundled example dataset (built offline on first use). Given a
folder, it must hold shards of the splits the command needs; its tokenizer is the one given, the one
its manifest names (datasets built or downloaded by `harness data`), or the single `*.model` in the
challenge's layout (`data/datasets/<name>/` beside `data/tokenizers/`).
"""

from __future__ import annotations

import os
from pathlib import Path

from harness.data.example import ExampleDataset, ensure_example_dataset
from harness.data.shards import MANIFEST_NAME, manifest_tokenizer_path, read_manifest
from harness.errors import UserError

DATA_DIR_ENV = "PGOLF_DATA_DIR"


def default_data_dir() -> Path:
    """./data, the layout the challenge's scripts expect, unless $PGOLF_DATA_DIR says otherwise."""
    return Path(os.environ.get(DATA_DIR_ENV) or "data")


def example_dataset(data_dir: str | Path | None = None, *, rebuild: bool = False,
                    tokenizer: Path | None = None) -> ExampleDataset:
    """The bundled example dataset (built offline from CPython's own text on first use; cached after),
    or with `tokenizer` the same corpus tokenised with that model. Its paths are absolute: callers hand
    them to scripts that run in other working directories."""
    root = Path(data_dir) if data_dir is not None else default_data_dir()
    return ensure_example_dataset(root.resolve(), rebuild=rebuild, tokenizer=tokenizer)


def resolve_data(data: str | None, tokenizer: str | None, splits: tuple[str, ...] = ("train", "val"),
                 own_tokenizer: Path | None = None) -> tuple[Path, Path]:
    """The dataset folder and tokenizer: given, or the bundled example dataset (built if missing) -- in
    `own_tokenizer` (the submission's own model) when neither a dataset nor a tokenizer is given;
    the folder must hold shards of each of `splits`."""
    if data is None:
        if tokenizer is None and own_tokenizer is not None:
            example = example_dataset(tokenizer=own_tokenizer)
            return example.dataset_dir, example.tokenizer_path
        example = example_dataset()
        return example.dataset_dir, Path(tokenizer) if tokenizer else example.tokenizer_path
    dataset_dir = Path(data)
    if not dataset_dir.is_dir():
        raise UserError("no such dataset folder (give the folder holding fineweb_*.bin shards)", dataset_dir)
    for split in splits:
        if not any(dataset_dir.glob(f"fineweb_{split}_*.bin")):
            raise UserError(f"holds no fineweb_{split}_*.bin shards", dataset_dir)
    if tokenizer is not None:
        path = Path(tokenizer)
        if not path.is_file():
            raise UserError("no such tokenizer file", path)
        return dataset_dir, path
    if (dataset_dir / MANIFEST_NAME).is_file():  # built or downloaded by `harness data`: it names its tokenizer
        path = manifest_tokenizer_path(dataset_dir, read_manifest(dataset_dir))
        if not path.is_file():
            raise UserError(f"its {MANIFEST_NAME} names the tokenizer {path}, which is missing; give --tokenizer PATH",
                            dataset_dir)
        return dataset_dir, path
    # The challenge's layout: data/datasets/<name>/ beside data/tokenizers/<model>.
    candidates = sorted((dataset_dir.resolve().parent.parent / "tokenizers").glob("*.model"))
    if len(candidates) != 1:
        raise UserError("cannot tell which tokenizer goes with this dataset; give --tokenizer PATH", dataset_dir)
    return dataset_dir, candidates[0]
