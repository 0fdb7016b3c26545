"""Progress for long work: a rich progress bar on a terminal, two plain lines (start, done) elsewhere.

CI logs and pipes get no cursor tricks, only what happened and how long it took. Everything goes to
stderr, so that stdout stays the command's result (tables, JSON).
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Callable, Iterator

from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn


@contextmanager
def progress(description: str, total: float | None = None, *, unit: str = "items",
             console: Console | None = None) -> Iterator[Callable[[float], None]]:
    """Yields `advance(amount)`. `unit="bytes"` shows sizes instead of counts."""
    console = console or Console(stderr=True)
    started = time.monotonic()
    if not console.is_terminal:
        console.print(f"{description} ...", highlight=False)
        yield lambda amount=1: None
        console.print(f"{description}: done in {time.monotonic() - started:.1f} s", highlight=False)
        return
    count = DownloadColumn() if unit == "bytes" else MofNCompleteColumn()
    with Progress(TextColumn("{task.description}"), BarColumn(), count, TimeRemainingColumn(),
                  console=console, transient=True) as bar:
        task = bar.add_task(description, total=total)
        yield lambda amount=1: bar.advance(task, amount)
    console.print(f"{description}: done in {time.monotonic() - started:.1f} s", highlight=False)
