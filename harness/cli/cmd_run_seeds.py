"""`harness run-seeds`: train the reference trainer or a submission once per seed, then tabulate.

Parses and checks the arguments (bad input is one line and exit 2), hands the work to
harness.reproduce.runner, draws progress from the runner's callbacks, prints the per-seed table with mean and
standard deviation, and, with --record, writes the record folder through harness.reproduce.record.
"""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

from rich.console import Console

from harness import rules
from harness.cli.arguments import add_data_arguments, parse_env, parse_seeds
from harness.cli.seeds_view import ProgressReporter, print_results
from harness.errors import UserError
from harness.pipeline import data_for
from harness.reproduce.record import RecordInfo, write_record
from harness.reproduce.runner import (
    DEFAULT_TIMEOUT_S, REFERENCE_TRAINER_DIR, RunPlan, read_vocab_size, refuse_out_dir_inside_code, run_seeds,
)
from harness.submission.folder import load_submission


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "run-seeds", help="train the reference trainer (or a submission) once per seed and tabulate the scores",
        description="Run train_gpt.py once per seed, each in a fresh work dir with the data linked where the "
                    "script expects it; completed seeds are reused unless --force. Exit 1 if any seed failed.",
    )
    parser.add_argument("--seeds", required=True, help="comma-separated seeds, e.g. 1337,42,2025")
    parser.add_argument("--submission", metavar="DIR",
                        help="folder holding the train_gpt.py to run (default: the reference trainer, reference_train/)")
    parser.add_argument("--nproc", type=int, default=1, help="processes per run; >1 runs under torchrun (default 1)")
    add_data_arguments(parser, "dataset folder with fineweb_train_*.bin / fineweb_val_*.bin")
    parser.add_argument("--out", metavar="DIR", help="run dir for work dirs and results (default: runs/<submission>_<dataset>)")
    parser.add_argument("--env", metavar="KEY=VALUE", action="append", default=[],
                        help="environment variable for the script (repeatable), e.g. --env ITERATIONS=200")
    parser.add_argument("--timeout", metavar="S", type=float, default=DEFAULT_TIMEOUT_S,
                        help=f"wall-clock limit per seed in seconds (default {DEFAULT_TIMEOUT_S:g})")
    parser.add_argument("--force", action="store_true", help="rerun seeds that already completed")
    parser.add_argument("--record", metavar="NAME", help="write a record folder NAME (under --record-dir) when all seeds succeed")
    parser.add_argument("--record-dir", metavar="DIR", default="submissions", help="where --record writes (default submissions/)")
    parser.add_argument("--blurb", help="one-paragraph description for the record's README and submission.json")
    parser.add_argument("--author", default="pgolf-harness", help="author written in the record's submission.json")
    parser.add_argument("--github-id", default="", help="GitHub id written in the record's submission.json")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    seeds = parse_seeds(args.seeds)
    plan = build_plan(args)
    if args.record is not None and (Path(args.record).name != args.record or args.record in ("", ".", "..")):
        raise UserError(f"--record takes a folder name (it goes under --record-dir), got {args.record!r}")
    record_folder = Path(args.record_dir) / args.record if args.record else None
    if record_folder is not None and record_folder.exists():
        raise UserError("already exists; remove it or choose another --record name", record_folder)
    console = Console(highlight=False)  # results: the table, failures, the record (stdout)
    status = Console(stderr=True, highlight=False)  # progress (stderr, as harness.progress does)
    status.print(f"run-seeds: {len(seeds)} seed(s) of {plan.script} on {plan.dataset_dir.name}, "
                 f"{plan.nproc} process(es), out {plan.out_dir}")
    with ProgressReporter(status) as reporter:
        results = run_seeds(plan, seeds, force=args.force, reporter=reporter)
    print_results(console, results)
    if any(not result.ok for result in results):
        if record_folder is not None:
            console.print(f"no record written: not every seed completed ({record_folder})")
        return 1
    if record_folder is not None:
        info = RecordInfo(
            name=args.record, source=describe_source(args), author=args.author, github_id=args.github_id,
            blurb=args.blurb or "",
            command=run_seeds_command(args, seeds, args.submission, args.record)
            + (f" --record-dir {shlex.quote(args.record_dir)}" if args.record_dir != "submissions" else ""),
            rerun=run_seeds_command(args, seeds, str(record_folder), None),
        )
        write_record(record_folder, plan, results, info)
        console.print(f"record written: {record_folder}")
    return 0


def build_plan(args: argparse.Namespace) -> RunPlan:
    code_dir = Path(args.submission) if args.submission else REFERENCE_TRAINER_DIR
    if not code_dir.is_dir():
        raise UserError("no such submission folder", code_dir)
    if not (code_dir / rules.COUNTED_CODE_FILE).is_file():
        raise UserError(f"holds no {rules.COUNTED_CODE_FILE} to run", code_dir)
    if args.nproc < 1:
        raise UserError(f"--nproc must be at least 1, got {args.nproc}")
    if not args.timeout > 0:
        raise UserError(f"--timeout must be a positive number of seconds, got {args.timeout:g}")
    env = parse_env(args.env)
    dataset_dir, tokenizer, _ = data_for(load_submission(code_dir), args.data, args.tokenizer)
    out_dir = Path(args.out) if args.out else Path("runs") / f"{code_dir.resolve().name}_{dataset_dir.name}"
    refuse_out_dir_inside_code(code_dir, out_dir)
    # Read the vocabulary now, so that a bad tokenizer stops us before any seed runs.
    vocab_size = None if "VOCAB_SIZE" in env else read_vocab_size(tokenizer)
    return RunPlan(code_dir=code_dir.resolve(), dataset_dir=dataset_dir.resolve(), tokenizer_path=tokenizer.resolve(),
                   out_dir=out_dir.resolve(), nproc=args.nproc, env=env, timeout_s=args.timeout,
                   vocab_size=vocab_size)


def describe_source(args: argparse.Namespace) -> str:
    if args.submission:
        return f"`{rules.COUNTED_CODE_FILE}` from `{args.submission}`"
    return "the reference trainer (`reference_train/train_gpt.py`)"


def run_seeds_command(args: argparse.Namespace, seeds: list[int], submission: str | None, record: str | None) -> str:
    """A run-seeds line with this run's seeds, data and settings (never --out, a local choice)."""
    words = ["harness", "run-seeds", "--seeds", ",".join(map(str, seeds))]
    if submission:
        words += ["--submission", submission]
    if args.nproc != 1:
        words += ["--nproc", str(args.nproc)]
    if args.data:
        words += ["--data", args.data]
    if args.tokenizer:
        words += ["--tokenizer", args.tokenizer]
    for pair in args.env:
        words += ["--env", pair]
    if args.timeout != DEFAULT_TIMEOUT_S:
        words += ["--timeout", f"{args.timeout:g}"]
    if record:
        words += ["--record", record]
    return shlex.join(words)
