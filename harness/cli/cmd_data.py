"""`harness data build|verify|download|example`: make, check and fetch datasets in the challenge's format."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console
from rich.table import Table

from harness import rules
from harness.cli.output import add_output_arguments, emit_verdict
from harness.data.location import DATA_DIR_ENV, default_data_dir, example_dataset
from harness.data.shards import MANIFEST_NAME, read_manifest


def register(subparsers) -> None:
    parser = subparsers.add_parser("data", help="build, verify, download and make example datasets",
                                   description="Datasets in the challenge's shard format, with a manifest.")
    parser.set_defaults(handler=lambda args: _print_help(parser))
    commands = parser.add_subparsers(dest="data_command", metavar="SUBCOMMAND")
    _register_build(commands)
    _register_verify(commands)
    _register_download(commands)
    _register_example(commands)


def _print_help(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def _register_build(commands) -> None:
    parser = commands.add_parser(
        "build", help="tokenise text into train/val shards with a manifest",
        description="Tokenise documents into fineweb_val_*/fineweb_train_* shards (BOS before every document, "
                    "no EOS; validation = the first N documents) and write manifest.json. --text files are one "
                    "document each; --jsonl files hold one JSON object per line with a \"text\" key.")
    sources = parser.add_mutually_exclusive_group(required=True)
    sources.add_argument("--text", nargs="+", metavar="FILE", help="UTF-8 text files, one document per file")
    sources.add_argument("--jsonl", nargs="+", metavar="FILE", help='JSONL files, one {"text": ...} per line')
    parser.add_argument("--tokenizer", required=True, metavar="MODEL",
                        help="SentencePiece model to use (written there with --train-tokenizer)")
    parser.add_argument("--train-tokenizer", action="store_true",
                        help="train MODEL first on the training documents, with the challenge's settings")
    parser.add_argument("--vocab-size", type=int, default=rules.BASELINE_VOCAB_SIZE, metavar="N",
                        help=f"vocabulary of the trained tokenizer (default {rules.BASELINE_VOCAB_SIZE})")
    parser.add_argument("--val-docs", type=int, required=True, metavar="N",
                        help="the first N documents form the validation split")
    parser.add_argument("--out", required=True, metavar="DIR", help="dataset directory to create")
    parser.add_argument("--shard-tokens", type=int, default=rules.SHARD_TOKENS_MAX, metavar="N",
                        help=f"tokens per shard (default {rules.SHARD_TOKENS_MAX:,}, as the challenge's)")
    parser.add_argument("--force", action="store_true", help="replace an existing dataset (and tokenizer)")
    parser.set_defaults(handler=_build)


def _build(args: argparse.Namespace) -> int:
    from harness.data.build import build_dataset

    if args.vocab_size != rules.BASELINE_VOCAB_SIZE and not args.train_tokenizer:
        Console(stderr=True).print("note: --vocab-size only matters with --train-tokenizer", highlight=False)
    manifest = build_dataset(text_files=args.text, jsonl_files=args.jsonl, tokenizer=args.tokenizer, out=args.out,
                             val_docs=args.val_docs, train=args.train_tokenizer, vocab_size=args.vocab_size,
                             shard_tokens=args.shard_tokens, force=args.force)
    _print_dataset(manifest, Path(args.out), Path(args.tokenizer))
    return 0


def _register_verify(commands) -> None:
    parser = commands.add_parser("verify", help="check shards, counts, sha256 and tokenizer against manifest.json",
                                 description="Check a dataset directory against its manifest.json; exit 1 when a "
                                             "check fails.")
    parser.add_argument("dataset_dir", metavar="DIR", help="the dataset directory (holding manifest.json)")
    parser.add_argument("--tokenizer", metavar="MODEL", help="the tokenizer, if not where the manifest says")
    add_output_arguments(parser)
    parser.set_defaults(handler=_verify)


def _verify(args: argparse.Namespace) -> int:
    from harness.data.verify import verify_dataset

    return emit_verdict(verify_dataset(args.dataset_dir, args.tokenizer), args)


def _register_download(commands) -> None:
    from harness.data.download import DEFAULT_REMOTE_ROOT, DEFAULT_REPO_ID, DEFAULT_TRAIN_SHARDS, REMOTE_ROOT_ENV, REPO_ENV

    parser = commands.add_parser(
        "download", help="download the challenge's published shards (needs huggingface_hub)",
        description=f"Download a variant's validation shards, its first N training shards and its tokenizer from "
                    f"the Hugging Face dataset {DEFAULT_REPO_ID} (${REPO_ENV}; remote root "
                    f"{DEFAULT_REMOTE_ROOT!r}, ${REMOTE_ROOT_ENV}). Resumable; files are checked before use.")
    parser.add_argument("--variant", default="sp1024", help="sp1024 (default), sp4096, sp8192 or byte260")
    parser.add_argument("--train-shards", type=int, default=DEFAULT_TRAIN_SHARDS, metavar="N",
                        help=f"training shards to fetch, a prefix of the export (default {DEFAULT_TRAIN_SHARDS})")
    _add_data_dir(parser)
    parser.add_argument("--with-docs", action="store_true",
                        help="also fetch docs_selected.jsonl and its sidecar (the raw documents, for re-tokenising)")
    parser.add_argument("--refresh-manifest", action="store_true", help="fetch the published manifest again")
    parser.set_defaults(handler=_download)


def _download(args: argparse.Namespace) -> int:
    from harness.data.download import download

    report = download(args.variant, args.train_shards, args.data_dir or default_data_dir(),
                      with_docs=args.with_docs, refresh_manifest=args.refresh_manifest)
    Console(stderr=True).print(f"{len(report.fetched)} files fetched, {len(report.kept)} already present and "
                               "checked", highlight=False)
    _print_dataset(report.manifest, report.dataset_dir, report.tokenizer_path)
    return 0


def _register_example(commands) -> None:
    parser = commands.add_parser(
        "example", help="build the bundled example dataset offline (cached)",
        description="Build the example dataset from text that ships with CPython (pydoc topics, standard library "
                    "docstrings and comments) with a 1024-token SentencePiece tokenizer trained on it; offline, "
                    "deterministic, instant when already built.")
    _add_data_dir(parser)
    parser.add_argument("--rebuild", action="store_true", help="build again even if a complete copy exists")
    parser.set_defaults(handler=_example)


def _example(args: argparse.Namespace) -> int:
    example = example_dataset(args.data_dir, rebuild=args.rebuild)
    _print_dataset(read_manifest(example.dataset_dir), example.dataset_dir, example.tokenizer_path)
    return 0


def _add_data_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", metavar="DIR",
                        help=f"the data directory (default ./data, or ${DATA_DIR_ENV}); datasets/ and tokenizers/ "
                             "go below it")


def _print_dataset(manifest: dict, dataset_dir: Path, tokenizer_path: Path | None = None) -> None:
    table = Table(title=f"dataset {manifest['name']}", title_justify="left")
    for column in ("split", "documents", "tokens", "shards"):
        table.add_column(column, justify="left" if column == "split" else "right")
    for split, totals in manifest["splits"].items():
        docs = "?" if totals["docs"] is None else f"{totals['docs']:,}"
        table.add_row(split, docs, f"{totals['tokens']:,}", str(totals["shards"]))
    console = Console()
    console.print(table)
    console.print(f"dataset:   {dataset_dir}", highlight=False, soft_wrap=True)
    console.print(f"manifest:  {dataset_dir / MANIFEST_NAME}", highlight=False, soft_wrap=True)
    if tokenizer_path is not None:
        console.print(f"tokenizer: {tokenizer_path}", highlight=False, soft_wrap=True)
