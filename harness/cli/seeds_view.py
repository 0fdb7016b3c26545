"""How seeds being run look on the console: live progress per seed (a rich bar on a terminal, sparse
plain lines otherwise) and the results table. Shared by `run-seeds` and `verify`."""

from __future__ import annotations

import re
import time

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from harness.reproduce.runner import SeedResult, spread

STEP_LINE = re.compile(r"^step:(\d+)/(\d+) .*?train_loss:([-+0-9.eE]+|nan|inf)")
VAL_LINE = re.compile(r"^step:(\d+)/(\d+) val_loss:(\S+) val_bpb:(\S+)")
PLAIN_PROGRESS_EVERY_S = 30.0  # without a terminal, a step line at most this often (CI logs stay short)
FAILURE_TAIL_LINES = 20


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
