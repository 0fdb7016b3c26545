"""Run untrusted code (a submission's train_gpt.py, an adapter worker) in a child process.

The child gets a scrubbed environment (no tokens, keys or proxies of ours; only what we pass), its own
process group (so a timeout kills everything it started), a wall-clock limit, and no network where the
OS allows it (Linux: a fresh network namespace through `unshare -rn` when available). Nothing of the
child runs inside the harness process.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from functools import lru_cache
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

# Variables a child may inherit: what Python, PyTorch, CUDA and torchrun need to work, nothing secret.
INHERITED_ENV = (
    "PATH", "HOME", "LANG", "LC_ALL", "TERM", "TMPDIR", "USER",
    "CUDA_VISIBLE_DEVICES", "CUDA_HOME", "LD_LIBRARY_PATH", "NVIDIA_VISIBLE_DEVICES",
    "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE",
    "TRITON_CACHE_DIR", "TORCHINDUCTOR_CACHE_DIR", "VIRTUAL_ENV", "PYTHONPATH",
    # Multi-GPU hosts may require NVLink multicast off in every NCCL program (trainer, eval worker).
    "NCCL_NVLS_ENABLE", "TORCH_SYMM_MEM_DISABLE_MULTICAST", "NVSHMEM_DISABLE_NVLS",
)
TAIL_LINES = 40


@dataclass
class SandboxResult:
    returncode: int | None  # None when killed for the time limit
    timed_out: bool
    wall_s: float
    tail: list[str] = field(default_factory=list)  # last lines of combined stdout/stderr
    network_isolated: bool = False

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out


def scrubbed_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {key: os.environ[key] for key in INHERITED_ENV if key in os.environ}
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.update(extra or {})
    return env


@lru_cache(maxsize=1)
def network_isolation_prefix() -> tuple[str, ...]:
    """`unshare -rn` runs the child in a new user+network namespace with only loopback, where allowed;
    [] where the OS refuses (then the child has the network, and the result says so)."""
    unshare = shutil.which("unshare")
    if not unshare or not sys.platform.startswith("linux"):
        return ()
    # A new network namespace starts with loopback down; torchrun's rendezvous needs it up.
    prefix = [unshare, "-rn", "sh", "-c", 'ip link set lo up 2>/dev/null; exec "$@"', "sandbox"]
    probe = subprocess.run([*prefix, "true"], capture_output=True, timeout=10)
    return tuple(prefix) if probe.returncode == 0 else ()


def run_sandboxed(
    command: Sequence[str],
    *,
    cwd: str | Path,
    timeout_s: float,
    env: dict[str, str] | None = None,
    log_path: str | Path | None = None,
    isolate_network: bool = True,
    on_line: Callable[[str], None] | None = None,
) -> SandboxResult:
    """Run `command` in `cwd` under the limits above; stream its output to `log_path` and `on_line`."""
    prefix = network_isolation_prefix() if isolate_network else []
    start = time.monotonic()
    tail: deque[str] = deque(maxlen=TAIL_LINES)
    log = open(log_path, "w", encoding="utf-8", errors="replace") if log_path else None
    try:
        process = subprocess.Popen(
            [*prefix, *command], cwd=str(cwd), env=scrubbed_env(env), stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
            text=True, encoding="utf-8", errors="replace", bufsize=1,
        )
        timed_out = _pump(process, start + timeout_s, tail, log, on_line)
    finally:
        if log:
            log.close()
    return SandboxResult(
        returncode=None if timed_out else process.returncode, timed_out=timed_out,
        wall_s=time.monotonic() - start, tail=list(tail), network_isolated=bool(prefix),
    )


def _pump(process, deadline, tail, log, on_line) -> bool:
    """Copy the child's output as it comes (a reader thread) until it exits or the deadline passes;
    True when it timed out. A thread, not select(): a text pipe buffers lines that select cannot see."""

    def read_lines() -> None:
        for line in process.stdout:
            line = line.rstrip("\n")
            tail.append(line)
            if log:
                log.write(line + "\n")
            if on_line:
                on_line(line)

    reader = threading.Thread(target=read_lines, name="sandbox-output", daemon=True)
    reader.start()
    timed_out = False
    try:
        process.wait(timeout=max(0.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        timed_out = True
        _kill_group(process)
    # Whatever the child left running (workers, daemons holding the pipe) dies with its group.
    _kill_group(process)
    reader.join(timeout=10)
    process.stdout.close()
    return timed_out


def _kill_group(process: subprocess.Popen) -> None:
    """SIGTERM the child's whole process group, then SIGKILL what is left after 5 s."""
    for sig, grace in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=grace)
            return
        except subprocess.TimeoutExpired:
            continue
