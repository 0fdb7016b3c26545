"""What this machine lets the sandbox enforce, probed once; and how one run's Limits become the commands
in front of its own (cgroup join, `unshare`, the launcher) and the report of what was enforced.

Namespaces come in levels, the first the machine allows: user + mount + pid + network (the run sees only
its own processes, writes only its work dir and a private /dev/shm, has no network and no service sockets
of /run); the same without the read-only mounts (a kernel without mount_setattr); or user + network (only
the network). Each level is probed by running the launcher under it and checking, where it confines
files, that a write outside the work dir fails. Cgroups are in
harness/reproduce/cgroups.py; the launcher, which applies the rlimits and the mounts inside the child,
in harness/reproduce/launcher.py.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from harness.reproduce import cgroups
from harness.reproduce.limits import (
    CPU_TIME, FILE_SIZE, FILES, MEMORY, NETWORK, OPEN_FILES, PROCESS_TREE, PROCESSES, SECRETS, Limits, not_enforced,
    size,
)

LAUNCHER = Path(__file__).with_name("launcher.py")
HARNESS_CHECKOUT = Path(__file__).resolve().parents[2]
# Where a user's credentials usually live, under the harness's HOME: hidden from the run (an empty mount
# over each), since everything else the user may read stays readable.
SECRET_HOME_PATHS = (
    ".ssh", ".netrc", ".git-credentials", ".gitconfig", ".pypirc", ".npmrc", ".docker", ".kube", ".gnupg",
    ".aws", ".azure", ".boto", ".s3cfg", ".config/gcloud", ".config/gh", ".cache/huggingface", ".huggingface",
)
# The machine's service sockets (docker, dbus, systemd): a Unix socket is a way out of a network namespace.
SERVICE_SOCKET_DIRS = ("/run", "/var/run")


@dataclass(frozen=True)
class Namespaces:
    name: str
    options: tuple[str, ...]  # unshare's
    network: bool
    files: bool  # a mount namespace: read-only everything but the work dir, secrets hidden
    pids: bool  # a pid namespace, the launcher its init


_ALL = ("--user", "--map-root-user", "--mount", "--pid", "--fork", "--kill-child", "--mount-proc", "--net")
LEVELS = (
    Namespaces("user, mount, pid and network namespaces", _ALL, network=True, files=True, pids=True),
    # A kernel before 5.12 has no mount_setattr: the pid namespace still holds, the files are not confined.
    Namespaces("user, pid and network namespaces", _ALL, network=True, files=False, pids=True),
    Namespaces("user and network namespaces", ("--user", "--map-root-user", "--net"),
               network=True, files=False, pids=False),
)


@dataclass(frozen=True)
class Machine:
    """What the sandbox can use on this machine."""

    unshare: str | None
    namespaces: Namespaces | None  # the strongest level that works, None: none
    refused: tuple[str, ...]  # why each stronger level failed
    cgroups: dict[str, tuple[cgroups.Hierarchy | None, str]]
    is_root: bool

    def why_not(self, what: str) -> str:
        return "; ".join(self.refused) or f"{what}: this OS has no `unshare` (Linux user namespaces)"


def launcher_command(spec: dict) -> list[str]:
    """The launcher by its path, isolated (-I -S): nothing in the work dir can stand in for it."""
    return [sys.executable, "-I", "-S", str(LAUNCHER), "--spec", json.dumps(spec), "--"]


def _probe(unshare: str, level: Namespaces) -> str | None:
    """None if `level` works here (for a files level: a write beside the work dir fails), else why not."""
    check = "pass"
    if level.files:
        check = ("import sys\nopen('inside', 'w').close()\ntry:\n    open('../outside', 'w')\n"
                 "except OSError:\n    sys.exit(0)\nsys.exit(3)\n")
    spec = {"loopback": level.network, "confine_files": level.files, "init": level.pids, "hidden": [],
            "shm_bytes": 1 << 20}
    with tempfile.TemporaryDirectory(prefix="pgolf-probe-") as root:
        work = Path(root, "work")
        work.mkdir()
        argv = [unshare, *level.options, *launcher_command(spec), sys.executable, "-I", "-S", "-c", check]
        try:
            done = subprocess.run(argv, cwd=work, capture_output=True, timeout=30, env={"PATH": os.defpath})
        except (OSError, subprocess.TimeoutExpired) as error:
            return f"{level.name}: {error}"
        if done.returncode != 0:
            last = (done.stderr.decode(errors="replace").strip().splitlines() or [f"exit status {done.returncode}"])[-1]
            return f"{level.name}: {last}"
        if level.files and (Path(root, "outside").exists() or not (work / "inside").exists()):
            return f"{level.name}: the read-only mounts did not hold"
    return None


@lru_cache(maxsize=1)
def machine() -> Machine:
    unshare = shutil.which("unshare") if sys.platform.startswith("linux") else None
    refused, chosen = [], None
    for level in LEVELS if unshare else ():
        why = _probe(unshare, level)
        if why is None:
            chosen = level
            break
        refused.append(why)
    return Machine(unshare, chosen, tuple(refused), cgroups.available(), os.geteuid() == 0)


def hidden_paths(work_dir: Path, network_isolated: bool) -> list[str]:
    """The secrets of SECRET_HOME_PATHS that exist (and the checkout's .git; /run when the network is
    isolated), resolved, never one that holds the work dir or lies inside it."""
    home = Path(os.path.expanduser("~"))
    candidates = [home / name for name in SECRET_HOME_PATHS] + [HARNESS_CHECKOUT / ".git"]
    if network_isolated:
        candidates += [Path(directory) for directory in SERVICE_SOCKET_DIRS]
    hidden = []
    for path in candidates:
        try:
            if not path.exists():
                continue
            resolved = path.resolve()
        except OSError:  # a path we may not even look at holds nothing the run could read either
            continue
        if resolved == work_dir or work_dir.is_relative_to(resolved) or resolved.is_relative_to(work_dir):
            continue
        if str(resolved) not in hidden:
            hidden.append(str(resolved))
    return hidden


@dataclass
class RunConfinement:
    """One run's confinement: the argv in front of its command, its cgroups, what is enforced and how."""

    prefix: list[str]
    enforced: dict[str, str]
    cgroups: cgroups.RunCgroups | None
    network_isolated: bool
    pid_namespace: bool


def confine(limits: Limits, work_dir: Path, isolate_network: bool, status_fd: int) -> RunConfinement:
    """Decide how each limit is enforced here, create the run's cgroups, and build the argv prefix."""
    host = machine()
    level = namespaces_for(limits, host)
    run_cgroups = _create_cgroups(limits, host)
    held = run_cgroups.hierarchies if run_cgroups else {}
    rlimits = {"CORE": 0}
    enforced = {MEMORY: _memory(limits, held, rlimits), PROCESSES: _tasks(limits, held, host, rlimits),
                **_plain_rlimits(limits, rlimits)}
    network = bool(level and level.network and isolate_network)
    files = bool(level and level.files)
    hidden = hidden_paths(work_dir, network) if files else []
    enforced.update(_namespaced(limits, host, level, network, isolate_network, hidden, cgroups.PIDS in held))

    spec = {"rlimits": rlimits, "loopback": network, "confine_files": files, "hidden": hidden,
            "shm_bytes": limits.shm_bytes, "init": bool(level and level.pids), "status_fd": status_fd}
    prefix = []
    if run_cgroups is not None:
        prefix += [sys.executable, "-I", "-S", str(LAUNCHER)]
        for procs in run_cgroups.procs_files:
            prefix += ["--join", procs]
        prefix.append("--")
    if level is not None:
        prefix += [host.unshare, *(option for option in level.options if option != "--net" or network)]
    prefix += launcher_command(spec)
    return RunConfinement(prefix, enforced, run_cgroups, network, bool(level and level.pids))


def namespaces_for(limits: Limits, host: Machine) -> Namespaces | None:
    """The machine's strongest level, except that a CUDA run gets no mount namespace: on an H200 with
    driver 580, CUDA did not start under the read-only mounts (cudaGetDeviceCount: error 304, "OS call
    failed"), with or without the private /dev/shm and the rlimits, and did under user, pid and network
    namespaces alone (measured by a probe of each variant on the device, bench/README.md)."""
    level = host.namespaces
    if level is None or not (limits.uses_cuda and level.files):
        return level
    return next(other for other in LEVELS if not other.files and other.pids == level.pids)


def _create_cgroups(limits: Limits, host: Machine) -> cgroups.RunCgroups | None:
    """The run's cgroups for the limits a cgroup can hold here; None when none can (or creating failed:
    then as if there were none, rlimits where they apply, else reported not enforced)."""
    hierarchies = {name: found for name, (found, _) in host.cgroups.items() if found is not None}
    wanted = {name: value for name, value in ((cgroups.MEMORY, limits.memory_bytes), (cgroups.PIDS, limits.tasks))
              if value and name in hierarchies}
    if not wanted:
        return None
    try:
        return cgroups.RunCgroups(wanted, {name: hierarchies[name] for name in wanted})
    except OSError:
        return None


def _memory(limits: Limits, held: dict[str, cgroups.Hierarchy], rlimits: dict[str, int]) -> str:
    if not limits.memory_bytes:
        return not_enforced("no limit was asked for")
    if cgroups.MEMORY in held:
        return f"{size(limits.memory_bytes)} for the whole process tree ({held[cgroups.MEMORY].describe()})"
    if limits.uses_cuda:
        return not_enforced("a CUDA run, which RLIMIT_AS would break, and no usable memory cgroup")
    rlimits["AS"] = limits.memory_bytes
    return f"{size(limits.memory_bytes)} of address space per process (RLIMIT_AS; no usable memory cgroup)"


def _tasks(limits: Limits, held: dict[str, cgroups.Hierarchy], host: Machine, rlimits: dict[str, int]) -> str:
    if not limits.tasks:
        return not_enforced("no limit was asked for")
    if cgroups.PIDS in held:
        return f"{limits.tasks:,} processes and threads for the whole tree ({held[cgroups.PIDS].describe()})"
    if host.is_root:
        return not_enforced("the harness runs as root, whom RLIMIT_NPROC exempts, and no usable pids cgroup")
    rlimits["NPROC"] = limits.tasks
    counted = "in the sandbox's user namespace" if host.namespaces else "over all of the user's processes"
    return f"{limits.tasks:,} processes and threads (RLIMIT_NPROC, counted {counted})"


def _plain_rlimits(limits: Limits, rlimits: dict[str, int]) -> dict[str, str]:
    """File size, open files and CPU time: rlimits wherever Python runs."""
    enforced = {}
    for name, key, value, words in ((FILE_SIZE, "FSIZE", limits.file_bytes, "per file (RLIMIT_FSIZE)"),
                                    (OPEN_FILES, "NOFILE", limits.open_files, "per process (RLIMIT_NOFILE)"),
                                    (CPU_TIME, "CPU", limits.cpu_s, "per process (RLIMIT_CPU)")):
        if not value:
            enforced[name] = not_enforced("no limit was asked for")
            continue
        rlimits[key] = _within_hard_limit(key, value)
        shown = size(rlimits[key]) if name == FILE_SIZE else f"{rlimits[key]:,}" + (" s" if name == CPU_TIME else "")
        enforced[name] = f"{shown} {words}"
    return enforced


def _namespaced(limits: Limits, host: Machine, level: Namespaces | None, network: bool, isolate_network: bool,
                hidden: list[str], pids_cgroup: bool) -> dict[str, str]:
    """What the namespaces give: the network, the files, the secrets, the process tree."""
    if network:
        net = "a fresh network namespace with only loopback (unshare --net)"
    elif not isolate_network:
        net = not_enforced("the caller allowed the network")
    else:
        net = not_enforced(f"no network namespace ({host.why_not('network')})")
    enforced = {NETWORK: net}
    if level and level.files:
        enforced[FILES] = ("read-only: every mount but the work dir, and a private /dev/shm"
                           + (f" of {size(limits.shm_bytes)}" if limits.shm_bytes else ""))
        enforced[SECRETS] = "hidden behind empty mounts: " + (", ".join(hidden) or "(none found)")
    elif host.namespaces and host.namespaces.files:  # left out for a CUDA run (namespaces_for)
        enforced[FILES] = not_enforced("a CUDA run, which does not start under the read-only mount namespace: "
                                       "the run may write wherever the user may")
        enforced[SECRETS] = not_enforced("a CUDA run, without the mount namespace that hides them: the run may "
                                         "read whatever the user may (the environment is still scrubbed)")
    else:
        enforced[FILES] = not_enforced(f"no mount namespace ({host.why_not('files')}): the run may write "
                                       "wherever the user may")
        enforced[SECRETS] = not_enforced("no mount namespace: the run may read whatever the user may "
                                         "(the environment is still scrubbed)")
    if level and level.pids:
        enforced[PROCESS_TREE] = ("a pid namespace: the run sees only its own processes, and all of them end "
                                  "with its command")
    elif pids_cgroup:
        enforced[PROCESS_TREE] = "the process group, then whatever is left in the run's cgroup, is killed at the end"
    else:
        enforced[PROCESS_TREE] = not_enforced("no pid namespace or cgroup: a process that leaves the process "
                                              "group (setsid) outlives the run")
    return enforced


def _within_hard_limit(key: str, value: int) -> int:
    """An rlimit can only be lowered without privilege: never ask for more than the hard limit we have."""
    _, hard = resource.getrlimit(getattr(resource, f"RLIMIT_{key}"))
    return value if hard == resource.RLIM_INFINITY else min(value, hard)
