"""Finding the processes a test started, by a token in their command line, from the host's /proc: a
sandboxed run's own pids are those of its pid namespace, which mean nothing out here."""

from __future__ import annotations

import os
import signal
import uuid
from pathlib import Path


def new_token() -> str:
    return f"pgolf-test-{uuid.uuid4().hex[:12]}"


def processes_with(token: str) -> list[int]:
    """Pids of live (not zombie) processes whose command line holds `token`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if token.encode() in (entry / "cmdline").read_bytes() and _state(entry) != "Z":
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def _state(entry: Path) -> str:
    return (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]


def kill_leftovers(token: str) -> list[int]:
    """SIGKILL what a failed test left running (only processes with its token), and say which."""
    left = processes_with(token)
    for pid in left:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return left
