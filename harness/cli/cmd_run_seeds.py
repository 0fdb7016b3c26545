"""`harness run-seeds`: train the reference trainer or a submission once per seed, then tabulate.

Parses and checks the arguments (bad input is one line and exit 2), hands the work to
harness.runner, draws progress from the runner's callbacks, prints the per-seed table with mean and
standard deviation, and, with --record, writes the record folder through harness.record.
"""

from __future__ import annotations

import argparse
import re
import shlex
import time
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from harness import rules
from harness.data import MANIFEST_NAME, example_dataset, manifest_tokenizer_path, read_manifest
from harness.errors import UserError
from harness.record import RecordInfo, write_record
from harness.runner import (
    DEFAULT_TIMEOUT_S, REFERENCE_TRAINER_DIR, RUNNER_OWNED_ENV, RunPlan, SeedResult, read_vocab_size,
    run_seeds, spread,
)

ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
STEP_LINE = re.compile(r"^step:(\d+)/(\d+) .*?train_loss:([-+0-9.eE]+|nan|inf)")
VAL_LINE = re.compile(r"^step:(\d+)/(\d+) val_loss:(\S+) val_bpb:(\S+)")
PLAIN_PROGRESS_EVERY_S = 30.0  # without a terminal, a step line at most this often (CI logs stay short)
FAILURE_TAIL_LINES = 20


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
    parser.add_argument("--data", metavar="DIR",
                        help="dataset folder with fineweb_train_*.bin / fineweb_val_*.bin (default: the bundled example dataset)")
    parser.add_argument("--tokenizer", metavar="PATH",
                        help="SentencePiece model (default: the example's; with --data, the one its manifest.json names, "
                             "else the one *.model in <data>/../../tokenizers/)")
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


def parse_seeds(text: str) -> list[int]:
    parts = [part.strip() for part in text.split(",")]
    if not parts or any(not part.isdigit() for part in parts):
        raise UserError(f"--seeds must be comma-separated non-negative integers such as 1337,42,2025, got {text!r}")
    seeds = [int(part) for part in parts]
    if len(set(seeds)) != len(seeds):
        raise UserError(f"--seeds lists a seed twice: {text!r}")
    return seeds


def parse_env(pairs: list[str], reserved: tuple[str, ...] = RUNNER_OWNED_ENV) -> dict[str, str]:
    env = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not ENV_NAME.match(key):
            raise UserError(f"--env takes KEY=VALUE with KEY a variable name, got {pair!r}")
        if key in reserved:
            raise UserError(f"--env cannot set {key}: the runner sets it for each seed (use --seeds)")
        env[key] = value
    return env


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
    dataset_dir, tokenizer = resolve_data(args.data, args.tokenizer)
    out_dir = Path(args.out) if args.out else Path("runs") / f"{code_dir.resolve().name}_{dataset_dir.name}"
    # Read the vocabulary now, so that a bad tokenizer stops us before any seed runs.
    vocab_size = None if "VOCAB_SIZE" in env else read_vocab_size(tokenizer)
    return RunPlan(code_dir=code_dir.resolve(), dataset_dir=dataset_dir.resolve(), tokenizer_path=tokenizer.resolve(),
                   out_dir=out_dir.resolve(), nproc=args.nproc, env=env, timeout_s=args.timeout,
                   vocab_size=vocab_size)


def resolve_data(data: str | None, tokenizer: str | None,
                 splits: tuple[str, ...] = ("train", "val")) -> tuple[Path, Path]:
    """The dataset folder and tokenizer: given, or the bundled example dataset (built if missing);
    the folder must hold shards of each of `splits`."""
    if data is None:
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


class ProgressReporter:
    """Live progress of the seeds: a rich bar per seed on a terminal, sparse plain lines otherwise."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.live = console.is_terminal
        self.progress = Progress(
            TextColumn("[bold]seed {task.fields[seed]}[/]"), BarColumn(),
            TextColumn("step {task.completed:.0f}/{task.total:.0f}"), TextColumn("{task.fields[status]}"),
            TimeElapsedColumn(), console=console, transient=False,
        ) if self.live else None
        self.tasks: dict[int, int] = {}
        self.last_plain = 0.0

    def __enter__(self) -> ProgressReporter:
        if self.progress:
            self.progress.start()
        return self

    def __exit__(self, *exc) -> None:
        if self.progress:
            self.progress.stop()

    def seed_started(self, seed: int, index: int, total: int) -> None:
        if self.progress:
            self.tasks[seed] = self.progress.add_task("", seed=seed, total=None, status="starting")
        else:
            self.console.print(f"seed {seed} ({index + 1}/{total}): started")
            self.last_plain = time.monotonic()

    def seed_line(self, seed: int, line: str) -> None:
        val = VAL_LINE.match(line)
        step = val or STEP_LINE.match(line)
        if not step:
            return
        done, total = int(step.group(1)), int(step.group(2))
        status = f"val_loss {val.group(3)} val_bpb {val.group(4)}" if val else f"train_loss {step.group(3)}"
        if self.progress:
            self.progress.update(self.tasks[seed], completed=done, total=total, status=status)
        elif val or time.monotonic() - self.last_plain >= PLAIN_PROGRESS_EVERY_S:
            self.console.print(f"seed {seed}: step {done}/{total} {status}")
            self.last_plain = time.monotonic()

    def seed_finished(self, result: SeedResult) -> None:
        if result.reused:
            message = f"seed {result.seed}: already completed, reused (val_bpb {result.val_bpb:.8f}); --force reruns it"
        elif result.ok:
            message = f"seed {result.seed}: done in {result.wall_s:.0f} s, val_bpb {result.val_bpb:.8f}"
        else:
            message = f"seed {result.seed}: {result.status}: {result.error}"
        if self.progress and result.seed in self.tasks:
            self.progress.update(self.tasks[result.seed], status=result.status if not result.ok else "done")
        self.console.print(message)


def print_results(console: Console, results: list[SeedResult]) -> None:
    for result in results:
        if not result.ok:
            console.print(f"[bold red]seed {result.seed} {result.status}[/]: {result.error} "
                          f"(log: {result.console_log}); last lines:")
            for line in result.tail[-FAILURE_TAIL_LINES:]:
                console.print(f"  {line}", markup=False)
    table = Table(title="run-seeds results")
    for column in ("seed", "status", "val_bpb", "val_loss", "steps", "train time (s)", "artifact bytes"):
        table.add_column(column, justify="left" if column in ("seed", "status") else "right")
    for r in results:
        status = ("reused" if r.reused else "ok") if r.ok else r.status
        table.add_row(str(r.seed), status, _number(r.val_bpb), _number(r.val_loss), _number(r.steps),
                      _number(None if r.train_time_ms is None else r.train_time_ms / 1000, "{:.1f}"),
                      _number(r.total_bytes_measured))
    done = [r for r in results if r.ok]
    bpb, loss = spread([r.val_bpb for r in done]), spread([r.val_loss for r in done])
    if bpb:
        table.add_section()
        table.add_row("mean", f"{len(done)}/{len(results)} ok", _number(bpb.mean), _number(loss.mean), "", "", "")
        table.add_row("std", "", _number(bpb.std), _number(loss.std), "", "", "")
    console.print(table)


def _number(value, pattern: str = "{:.8f}") -> str:
    if value is None:
        return "–"
    if isinstance(value, int):
        return str(value)
    return pattern.format(value)
