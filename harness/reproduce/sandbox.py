"""Run untrusted code (a submission's train_gpt.py, the evaluation worker) in a child process, under limits.

The child gets a scrubbed environment (no tokens, keys or proxies of ours; HOME and TMPDIR in its work dir),
its own process group, and the limits of a Limits (harness/reproduce/limits.py) enforced as far as the
machine allows (harness/reproduce/confinement.py decides how; the launcher applies them in the child):
memory, processes, file size, open files, CPU time, no network, every mount read-only but the work dir,
secrets hidden, a pid namespace whose processes all end with the run. From outside, the watcher (this
module) stops the run at the wall-clock limit, when its work dir grows past its cap (checked every second
and once more at the end) or when it prints past the output cap, and keeps the last lines. The result says
how each limit was enforced or why it was not, and which limit stopped the run, if one did. Nothing of the
child runs inside the harness process.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from harness.reproduce.confinement import RunConfinement, confine, machine
from harness.reproduce.limits import (
    CPU_TIME, ENVIRONMENT, FILE_SIZE, LIMIT_NAMES, MEMORY, OPEN_FILES, OUTPUT, PROCESSES, WALL_CLOCK, WORK_DIR,
    Limits, default_limits, is_enforced, size,
)

# Variables a child may inherit: what Python, PyTorch, CUDA and torchrun need to work, nothing secret.
# HOME and TMPDIR are the work dir's; compile caches are not shared between runs (a cache one run may
# write is a way to tamper with the next), so they live under HOME too.
INHERITED_ENV = (
    "PATH", "LANG", "LC_ALL", "TERM", "USER",
    "CUDA_VISIBLE_DEVICES", "CUDA_HOME", "LD_LIBRARY_PATH", "NVIDIA_VISIBLE_DEVICES",
    "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE",
    "VIRTUAL_ENV", "PYTHONPATH",
    # Multi-GPU hosts may require NVLink multicast off in every NCCL program (trainer, eval worker).
    "NCCL_NVLS_ENABLE", "TORCH_SYMM_MEM_DISABLE_MULTICAST", "NVSHMEM_DISABLE_NVLS",
)
TAIL_LINES = 40
MAX_LINE_BYTES = 65_536  # a longer line is taken in pieces: a script printing no newline cannot fill our memory
WATCH_INTERVAL_S = 0.2
WORK_DIR_SCAN_S = 1.0
TMP_DIR_NAME = ".tmp"
# What a failing run's last lines show when a limit stopped it from inside (the kernel refused something).
TAIL_EVIDENCE = (
    (MEMORY, ("MemoryError", "Cannot allocate memory", "std::bad_alloc", "can't allocate memory")),
    (FILE_SIZE, ("File too large",)),
    (OPEN_FILES, ("Too many open files",)),
    (PROCESSES, ("Resource temporarily unavailable", "can't start new thread")),
)
SIGNAL_LIMITS = {signal.SIGXCPU: CPU_TIME, signal.SIGXFSZ: FILE_SIZE}


@dataclass
class SandboxResult:
    returncode: int | None  # None when killed for the time limit; -N: killed by signal N
    timed_out: bool
    wall_s: float
    tail: list[str] = field(default_factory=list)  # last lines of combined stdout/stderr
    network_isolated: bool = False
    enforced: dict[str, str] = field(default_factory=dict)  # limit name -> how, or "not enforced: why"
    limit: str | None = None  # the limit that stopped the run (a limits.LIMIT_NAMES name), if one did
    limit_message: str | None = None  # which limit, its value and the evidence, in one sentence
    sandbox_error: str | None = None  # a confinement step failed in the child: the command never ran

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out and self.limit is None and self.sandbox_error is None


def scrubbed_env(extra: dict[str, str] | None = None, home: str | Path | None = None) -> dict[str, str]:
    env = {key: os.environ[key] for key in INHERITED_ENV if key in os.environ}
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    if home is not None:
        env["HOME"] = str(home)
        env["TMPDIR"] = str(Path(home) / TMP_DIR_NAME)
    env.update(extra or {})
    return env


def network_isolation_available() -> bool:
    """Whether runs here get a network namespace (verify refuses to run without one unless allowed)."""
    level = machine().namespaces
    return bool(level and level.network)


def run_sandboxed(
    command: Sequence[str],
    *,
    cwd: str | Path,
    timeout_s: float,
    env: dict[str, str] | None = None,
    log_path: str | Path | None = None,
    isolate_network: bool = True,
    on_line: Callable[[str], None] | None = None,
    limits: Limits | None = None,
) -> SandboxResult:
    """Run `command` in its work dir `cwd` under `limits` (harness policy when None); stream its output to
    `log_path` and `on_line` up to the output cap."""
    limits = limits or default_limits(timeout_s, uses_cuda=False)
    work_dir = Path(cwd).resolve()
    (work_dir / TMP_DIR_NAME).mkdir(exist_ok=True)
    status_read, status_write = os.pipe()
    confinement = confine(limits, work_dir, isolate_network, status_write)
    reported = {**confinement.enforced, **_watched(limits, timeout_s, confinement)}
    enforced = {name: reported[name] for name in LIMIT_NAMES if name in reported}
    start = time.monotonic()
    output = _Output(limits, log_path, on_line)
    try:
        process = subprocess.Popen(
            [*confinement.prefix, *command], cwd=str(work_dir), env=scrubbed_env(env, home=work_dir),
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
            pass_fds=(status_write,),
        )
    except OSError:
        _release(confinement, status_read, status_write)
        output.close()
        raise
    os.close(status_write)
    try:
        stopped = _watch(process, timeout_s, limits, work_dir, output)
    finally:
        _kill_group(process)  # whatever the child left running (workers, daemons holding the pipe)
        events = confinement.cgroups.events() if confinement.cgroups else {}
        _release(confinement, None, None)
        output.finish(process)
    status = _read_status(status_read)
    returncode = None if stopped and stopped[0] == WALL_CLOCK else _returncode(process, status)
    if stopped is None and "error" not in status:
        # A last look at the caps too: printing or writing fast between two looks is no way past them.
        stopped = (_over(OUTPUT, output.over and f"stopped by the output limit: {output.over}")
                   or (_diagnose(returncode, output.tail, enforced, events) if returncode != 0 else None)
                   or _over(WORK_DIR, _work_dir_over(work_dir, limits)))
    return SandboxResult(
        returncode=returncode, timed_out=bool(stopped and stopped[0] == WALL_CLOCK),
        wall_s=time.monotonic() - start, tail=list(output.tail), network_isolated=confinement.network_isolated,
        enforced=enforced, limit=stopped[0] if stopped else None, limit_message=stopped[1] if stopped else None,
        sandbox_error=f"the sandbox could not confine the run: {status['error']}" if "error" in status else None,
    )


def _over(name: str, message: str | None) -> tuple[str, str] | None:
    return (name, message) if message else None


def _watched(limits: Limits, timeout_s: float, confinement: RunConfinement) -> dict[str, str]:
    """The limits the watcher enforces from outside, and the environment, in SandboxResult.enforced's words."""
    ended = "its pid namespace" if confinement.pid_namespace else "its process group"
    watched = {WALL_CLOCK: f"{timeout_s:g} s, then {ended} is killed"}
    caps = []
    if limits.work_dir_bytes:
        caps.append(size(limits.work_dir_bytes))
    if limits.work_dir_files:
        caps.append(f"{limits.work_dir_files:,} entries")
    watched[WORK_DIR] = (" and ".join(caps) + " in the work dir, checked every second by the watcher") if caps else (
        "not enforced: no limit was asked for")
    printed = [size(limits.output_bytes)] if limits.output_bytes else []
    printed += [f"{limits.output_lines:,} lines"] if limits.output_lines else []
    watched[OUTPUT] = (" or ".join(printed) + " printed, then the run is stopped (the last lines kept)"
                       if printed else "not enforced: no limit was asked for")
    watched[ENVIRONMENT] = ("scrubbed: only " + ", ".join(INHERITED_ENV)
                            + " and the run's own; HOME and TMPDIR in the work dir")
    return watched


class _Output:
    """The child's output: to the log and the callback until the output cap, the last lines always."""

    def __init__(self, limits: Limits, log_path, on_line) -> None:
        self.limits, self.on_line = limits, on_line
        self.log = open(log_path, "w", encoding="utf-8", errors="replace") if log_path else None
        self.tail: deque[str] = deque(maxlen=TAIL_LINES)
        self.bytes = self.lines = 0
        self.over: str | None = None
        self.reader: threading.Thread | None = None

    def start(self, stream) -> None:
        self.reader = threading.Thread(target=self._read, args=(stream,), name="sandbox-output", daemon=True)
        self.reader.start()

    def _read(self, stream) -> None:
        """A thread, not select(): it blocks on the pipe while the watcher keeps time."""
        while True:
            chunk = stream.readline(MAX_LINE_BYTES)
            if not chunk:
                return
            self.bytes += len(chunk)
            self.lines += 1
            line = chunk.decode("utf-8", errors="replace").rstrip("\n")
            self.tail.append(line)
            if self.over is None:
                self.over = self._over_cap()
            if self.over is None:
                if self.log:
                    self.log.write(line + "\n")
                if self.on_line:
                    self.on_line(line)

    def _over_cap(self) -> str | None:
        if self.limits.output_bytes and self.bytes > self.limits.output_bytes:
            return f"printed more than {size(self.limits.output_bytes)}"
        if self.limits.output_lines and self.lines > self.limits.output_lines:
            return f"printed more than {self.limits.output_lines:,} lines"
        return None

    def finish(self, process: subprocess.Popen) -> None:
        if self.reader is not None:
            self.reader.join(timeout=10)
        process.stdout.close()
        self.close()

    def close(self) -> None:
        log, self.log = self.log, None  # a reader still draining a leftover's pipe stops writing to it
        if log:
            log.close()


def _watch(process: subprocess.Popen, timeout_s: float, limits: Limits, work_dir: Path,
           output: _Output) -> tuple[str, str] | None:
    """Wait for the child, keeping the wall clock, the output cap and the work dir's size; the limit that
    stopped it and why, or None when it ended by itself."""
    output.start(process.stdout)
    deadline = time.monotonic() + timeout_s
    next_scan = time.monotonic() + WORK_DIR_SCAN_S
    while True:
        try:
            process.wait(timeout=WATCH_INTERVAL_S)
            return None
        except subprocess.TimeoutExpired:
            pass
        now = time.monotonic()
        if now >= deadline:
            return WALL_CLOCK, f"killed after the time limit of {timeout_s:g} s"
        if output.over:
            return OUTPUT, f"stopped by the output limit: {output.over}"
        if now >= next_scan:
            over = _work_dir_over(work_dir, limits)
            if over:
                return WORK_DIR, over
            next_scan = time.monotonic() + WORK_DIR_SCAN_S


def _work_dir_over(work_dir: Path, limits: Limits) -> str | None:
    """Disk used (allocated blocks) and entries under the work dir, symlinks not followed; the sentence
    naming the cap it passed, or None. Stops counting as soon as a cap is passed."""
    used = entries = 0
    pending = [work_dir]
    while pending:
        try:
            with os.scandir(pending.pop()) as listing:
                for entry in listing:
                    entries += 1
                    try:
                        info = entry.stat(follow_symlinks=False)
                    except OSError:
                        continue
                    used += info.st_blocks * 512
                    if entry.is_dir(follow_symlinks=False):
                        pending.append(Path(entry.path))
                    if limits.work_dir_bytes and used > limits.work_dir_bytes:
                        return (f"stopped by the work-dir limit: wrote more than {size(limits.work_dir_bytes)} "
                                "in its work dir")
                    if limits.work_dir_files and entries > limits.work_dir_files:
                        return (f"stopped by the work-dir limit: created more than {limits.work_dir_files:,} "
                                "entries in its work dir")
        except OSError:
            continue
    return None


def _read_status(descriptor: int) -> dict:
    """The launcher's report of the command's end ({"exit"|"signal"|"error": ...}), {} if it made none."""
    os.set_blocking(descriptor, False)
    data = b""
    try:
        while chunk := os.read(descriptor, 4096):
            data += chunk
    except BlockingIOError:
        pass
    finally:
        os.close(descriptor)
    try:
        status = json.loads(data.decode().strip().splitlines()[-1]) if data.strip() else {}
    except ValueError:
        return {}
    return status if isinstance(status, dict) else {}


def _returncode(process: subprocess.Popen, status: dict) -> int | None:
    if "signal" in status:
        return -int(status["signal"])
    if "exit" in status:
        return int(status["exit"])
    return process.returncode


def _diagnose(returncode: int | None, tail, enforced: dict[str, str], events: dict[str, int]) -> tuple[str, str] | None:
    """The limit that most likely ended a failed run, with the evidence: the kernel's own counts first
    (OOM kills, refused forks), then the signal that killed it, then what its last lines show."""
    if events.get("oom_kill"):
        return MEMORY, _stopped(MEMORY, enforced, f"the kernel's OOM killer ended {events['oom_kill']} process(es)")
    if returncode is not None and returncode < 0 and -returncode in SIGNAL_LIMITS:
        name = SIGNAL_LIMITS[-returncode]
        return name, _stopped(name, enforced, f"killed by {signal.Signals(-returncode).name}")
    if events.get("pids_refused"):
        return PROCESSES, _stopped(PROCESSES, enforced, f"the kernel refused {events['pids_refused']} new task(s)")
    text = "\n".join(tail)
    for name, needles in TAIL_EVIDENCE:
        found = next((needle for needle in needles if needle in text), None)
        if found and is_enforced(enforced.get(name)):
            return name, _stopped(name, enforced, f"its last lines show {found!r}")
    return None


def _stopped(name: str, enforced: dict[str, str], evidence: str) -> str:
    return f"stopped by the {name.replace('_', ' ')} limit ({enforced.get(name, 'limit')}): {evidence}"


def _release(confinement: RunConfinement, *descriptors: int | None) -> None:
    if confinement.cgroups is not None:
        confinement.cgroups.remove()
    for descriptor in descriptors:
        if descriptor is not None:
            os.close(descriptor)


def _kill_group(process: subprocess.Popen, grace_s: float = 5.0) -> None:
    """SIGTERM the child's whole process group, then SIGKILL whatever of it is left after `grace_s`."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            process.poll()
            return
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline:
            if process.poll() is not None and not _group_alive(process.pid):
                return
            time.sleep(0.05)
    process.wait(timeout=grace_s)


def _group_alive(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    return True
