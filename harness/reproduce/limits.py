"""The limits of a sandboxed run, as data: harness policy (harness/rules.py) by default, set per call.

run_sandboxed takes a Limits; it reports, per limit, how it was enforced or why it was not (the names
below are the keys of SandboxResult.enforced). How each is enforced depends on what the machine allows
(harness/reproduce/sandbox.py probes it): memory by a cgroup for the whole tree, or by each process's
address space (RLIMIT_AS) on CPU runs only, since CUDA reserves far more address space than it uses;
processes by a cgroup's pids.max, or RLIMIT_NPROC inside the sandbox's user namespace (root is exempt from
it); the rest by rlimits in the child and by the sandbox's watcher.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

from harness import rules

# The limits a run reports on, in the order they are shown.
MEMORY, PROCESSES, FILE_SIZE, OPEN_FILES, CPU_TIME, WALL_CLOCK = (
    "memory", "processes", "file_size", "open_files", "cpu_time", "wall_clock")
WORK_DIR, OUTPUT, NETWORK, FILES, SECRETS, PROCESS_TREE, ENVIRONMENT = (
    "work_dir", "output", "network", "files", "secrets", "process_tree", "environment")
LIMIT_NAMES = (MEMORY, PROCESSES, FILE_SIZE, OPEN_FILES, CPU_TIME, WALL_CLOCK, WORK_DIR, OUTPUT, NETWORK, FILES,
               SECRETS, PROCESS_TREE, ENVIRONMENT)
NOT_ENFORCED = "not enforced"


@dataclass(frozen=True)
class Limits:
    """None: no limit of that kind (never the default: default_limits fills every one)."""

    memory_bytes: int | None = None  # the tree (cgroup), or each process's address space (RLIMIT_AS, CPU runs)
    tasks: int | None = None  # processes and threads of the tree (cgroup pids.max, or RLIMIT_NPROC)
    file_bytes: int | None = None  # the largest file a process may write (RLIMIT_FSIZE)
    open_files: int | None = None  # per process (RLIMIT_NOFILE)
    cpu_s: int | None = None  # CPU seconds per process (RLIMIT_CPU), beside the wall clock
    work_dir_bytes: int | None = None  # disk the run may fill in its work dir (the watcher checks every second)
    work_dir_files: int | None = None  # entries in the work dir
    output_bytes: int | None = None  # printed (stdout and stderr): beyond it the run is stopped
    output_lines: int | None = None
    shm_bytes: int | None = None  # size of the run's private /dev/shm
    uses_cuda: bool = False  # RLIMIT_AS breaks CUDA: a CUDA run's memory is bounded only by a cgroup


def machine_memory_bytes() -> int:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def usable_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def default_limits(timeout_s: float, uses_cuda: bool) -> Limits:
    """Harness policy for a run of `timeout_s` wall-clock seconds (rules.SANDBOX_*)."""
    memory = machine_memory_bytes()
    return Limits(
        memory_bytes=int(memory * rules.SANDBOX_MEMORY_FRACTION),
        tasks=rules.SANDBOX_MAX_TASKS,
        file_bytes=rules.SANDBOX_MAX_FILE_BYTES,
        open_files=rules.SANDBOX_MAX_OPEN_FILES,
        cpu_s=math.ceil(timeout_s * rules.SANDBOX_CPU_PER_WALL * usable_cores()) if math.isfinite(timeout_s) else None,
        work_dir_bytes=rules.SANDBOX_WORK_DIR_BYTES,
        work_dir_files=rules.SANDBOX_WORK_DIR_FILES,
        output_bytes=rules.SANDBOX_OUTPUT_BYTES,
        output_lines=rules.SANDBOX_OUTPUT_LINES,
        shm_bytes=int(memory * rules.SANDBOX_SHM_FRACTION),
        uses_cuda=uses_cuda,
    )


def size(count: int) -> str:
    """1073741824 -> '1 GiB', 104857600 -> '100 MiB', 1000 -> '1,000 bytes'."""
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if count >= scale:
            value = count / scale
            return f"{value:.0f} {unit}" if value == round(value) else f"{value:.1f} {unit}"
    return f"{count:,} bytes"


def not_enforced(why: str) -> str:
    return f"{NOT_ENFORCED}: {why}"


def is_enforced(how: str | None) -> bool:
    return bool(how) and not how.startswith(NOT_ENFORCED)
