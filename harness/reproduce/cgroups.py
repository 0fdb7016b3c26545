"""Control groups for a sandboxed run: a memory limit and a task limit that hold for the whole process tree
(rlimits hold per process, RLIMIT_NPROC per user and never for root), where the machine lets us.

The harness creates a cgroup only where it is plainly allowed to: as a child of its own cgroup in a cgroup v2
hierarchy whose controller is delegated to that cgroup (listed in its cgroup.subtree_control, writable), or
at the root of a cgroup v1 hierarchy in which nothing has placed the harness (its own cgroup there is "/")
and which it may write. A cgroup some other manager put the harness in (a container runtime's, a job
system's) is left alone: moving processes out of it would hide them from that manager. Each run gets its
own cgroup, joined by the launcher before any untrusted code starts, and removed after the run (whatever
is still in it is killed first: the cgroup also finds processes that left the run's process group).
"""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import count
from pathlib import Path

MEMORY, PIDS = "memory", "pids"
_names = count()


@dataclass(frozen=True)
class Hierarchy:
    controller: str
    version: int  # 1 or 2
    parent: Path  # the directory in which the run's cgroup is created

    def describe(self) -> str:
        return f"cgroup v{self.version} {self.controller} under {self.parent}"


def _mounts() -> list[tuple[str, str, set[str]]]:
    """(mount point, filesystem type, super options) of the cgroup filesystems mounted here."""
    found = []
    try:
        lines = Path("/proc/self/mountinfo").read_text(encoding="utf-8").splitlines()
    except OSError:
        return found
    for line in lines:
        before, _, after = line.partition(" - ")
        fields, tail = before.split(), after.split()
        if len(fields) > 4 and len(tail) >= 3 and tail[0] in ("cgroup", "cgroup2"):
            found.append((fields[4], tail[0], set(tail[2].split(","))))
    return found


def _own_cgroups() -> dict[str, str]:
    """Controller (or "" for v2) -> the harness's cgroup path in that hierarchy (/proc/self/cgroup)."""
    own = {}
    try:
        lines = Path("/proc/self/cgroup").read_text(encoding="utf-8").splitlines()
    except OSError:
        return own
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) == 3:
            for controller in parts[1].split(",") if parts[1] else [""]:
                own[controller] = parts[2]
    return own


def find_hierarchy(controller: str) -> tuple[Hierarchy | None, str]:
    """Where a run's cgroup for `controller` may go, or None and why not."""
    mounts, own = _mounts(), _own_cgroups()
    reasons = []
    for point, kind, options in mounts:
        if kind == "cgroup2" and "" in own:
            directory = Path(point + own[""]) if own[""] != "/" else Path(point)
            delegated = _read(directory / "cgroup.subtree_control").split()
            if controller not in delegated:
                reasons.append(f"cgroup v2 at {point}: {controller} is not delegated to the harness's cgroup "
                               f"{own['']} (its cgroup.subtree_control: {' '.join(delegated) or 'empty'})")
            elif not os.access(directory, os.W_OK):
                reasons.append(f"cgroup v2 at {point}: the harness's cgroup {own['']} is not writable")
            else:
                return Hierarchy(controller, 2, directory), ""
        elif kind == "cgroup" and controller in options:
            path = own.get(controller)
            if path != "/":
                reasons.append(f"cgroup v1 {controller} at {point}: the harness is in {path}, a cgroup that "
                               "whoever started it manages")
            elif not os.access(point, os.W_OK):
                reasons.append(f"cgroup v1 {controller} at {point}: not writable")
            else:
                return Hierarchy(controller, 1, Path(point)), ""
    return None, "; ".join(reasons) or f"no cgroup hierarchy with the {controller} controller is mounted"


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="ascii").strip()
    except OSError:
        return ""


def _limit_files(hierarchy: Hierarchy) -> tuple[str, ...]:
    if hierarchy.controller == PIDS:
        return ("pids.max",)
    return ("memory.max", "memory.swap.max") if hierarchy.version == 2 else (
        "memory.limit_in_bytes", "memory.memsw.limit_in_bytes")


@lru_cache(maxsize=1)
def available() -> dict[str, tuple[Hierarchy | None, str]]:
    """Controller -> (hierarchy, "") where creating a cgroup with a limit works here, else (None, why not).
    Probed once by creating and removing a cgroup."""
    found = {}
    for controller in (MEMORY, PIDS):
        hierarchy, why = find_hierarchy(controller)
        if hierarchy is not None:
            try:
                probe = RunCgroups({controller: 1 << 30 if controller == MEMORY else 64}, {controller: hierarchy})
                probe.remove()
            except OSError as error:
                hierarchy, why = None, f"{hierarchy.describe()}: creating a cgroup failed ({error})"
        found[controller] = (hierarchy, why)
    return found


@dataclass
class RunCgroups:
    """The cgroups of one run: created with their limits, joined by the launcher, read, removed."""

    limits: dict[str, int]  # controller -> limit (bytes of memory, or tasks)
    hierarchies: dict[str, Hierarchy]
    directories: dict[str, Path] = field(default_factory=dict)

    def __post_init__(self) -> None:
        name = f"pgolf-sandbox-{os.getpid()}-{next(_names)}"
        try:
            for controller, limit in self.limits.items():
                hierarchy = self.hierarchies[controller]
                directory = hierarchy.parent / name
                directory.mkdir()
                self.directories[controller] = directory
                main, *extra = _limit_files(hierarchy)
                (directory / main).write_text(str(limit), encoding="ascii")
                for optional in extra:  # no swap beyond the limit, where the kernel accounts swap
                    if (directory / optional).exists():
                        (directory / optional).write_text("0" if hierarchy.version == 2 else str(limit),
                                                          encoding="ascii")
        except OSError:
            self.remove()
            raise

    @property
    def procs_files(self) -> list[str]:
        return [str(directory / "cgroup.procs") for directory in self.directories.values()]

    def events(self) -> dict[str, int]:
        """{"oom_kill": N, "pids_refused": N}: what the kernel refused or killed in this run."""
        counts = {}
        if MEMORY in self.directories:
            directory = self.directories[MEMORY]
            text = _read(directory / "memory.events") or _read(directory / "memory.oom_control")
            counts["oom_kill"] = _counter(text, "oom_kill")
        if PIDS in self.directories:
            counts["pids_refused"] = _counter(_read(self.directories[PIDS] / "pids.events"), "max")
        return counts

    def remove(self, grace_s: float = 5.0) -> None:
        """Kill what is still inside (the run's own processes, by pid), then remove the cgroups."""
        deadline = time.monotonic() + grace_s
        for directory in self.directories.values():
            while directory.exists():
                for pid in _read(directory / "cgroup.procs").split():
                    try:
                        os.kill(int(pid), signal.SIGKILL)
                    except (ProcessLookupError, ValueError):
                        pass
                try:
                    directory.rmdir()
                except OSError:
                    if time.monotonic() > deadline:
                        break
                    time.sleep(0.05)
        self.directories = {}


def _counter(text: str, key: str) -> int:
    for line in text.splitlines():
        words = line.split()
        if len(words) == 2 and words[0] == key and words[1].isdigit():
            return int(words[1])
    return 0
