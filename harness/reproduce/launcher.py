"""The sandbox's launcher: the program every sandboxed run starts with, before the untrusted command.

    python -I -S launcher.py --join CGROUP_PROCS_FILE ... -- COMMAND...   join cgroups, then exec COMMAND
    python -I -S launcher.py --spec JSON -- COMMAND...                     confine, then run COMMAND

With --spec, inside the namespaces `unshare` made (harness/reproduce/sandbox.py decides which): bring the
network namespace's loopback up; make every mount read-only except the work dir (the current directory),
hide the paths it names behind empty mounts, give the run a private /dev/shm; then start COMMAND with the
rlimits, no capabilities and no way to gain privileges. As the init of a fresh pid namespace it stays,
reaps, forwards SIGTERM/SIGINT/SIGHUP, and exits when COMMAND exits: the kernel then kills everything else
in the namespace, daemons included. COMMAND's outcome goes to the harness on a pipe the command never
holds ({"exit": N} or {"signal": N}); a confinement step that fails stops the run (exit 125) with
{"error": ...} rather than running the command unconfined.

Standard library only, and run by its path in isolated mode (-I -S), so that nothing in the work dir (a
submission's own `harness/` folder, say) can stand in for it.
"""

from __future__ import annotations

import ctypes
import fcntl
import json
import os
import resource
import signal
import socket
import struct
import sys

CONFINEMENT_FAILED = 125
COMMAND_NOT_RUN = 127
RLIMITS = {"AS": resource.RLIMIT_AS, "NPROC": resource.RLIMIT_NPROC, "FSIZE": resource.RLIMIT_FSIZE,
           "NOFILE": resource.RLIMIT_NOFILE, "CPU": resource.RLIMIT_CPU, "CORE": resource.RLIMIT_CORE}
CPU_GRACE_S = 2  # SIGXCPU at the soft limit; SIGKILL this much later, for a script that handles SIGXCPU

# Linux constants (include/uapi/linux/mount.h, fs.h, prctl.h, sockios.h, if.h).
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_BIND = 1, 2, 4, 8, 4096
AT_FDCWD, AT_RECURSIVE, MOUNT_ATTR_RDONLY = -100, 0x8000, 1
SYS_MOUNT_SETATTR = 442  # the same number on every architecture (the unified syscall table)
PR_SET_NO_NEW_PRIVS, PR_CAPBSET_DROP, PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL = 38, 24, 47, 4
CAP_SETPCAP = 8
SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1


class ConfinementError(Exception):
    """A confinement step the harness asked for could not be applied: the run must not start."""


class MountAttr(ctypes.Structure):
    _fields_ = [("attr_set", ctypes.c_uint64), ("attr_clr", ctypes.c_uint64),
                ("propagation", ctypes.c_uint64), ("userns_fd", ctypes.c_uint64)]


def _libc():
    return ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        raise ConfinementError(f"{what}: {os.strerror(ctypes.get_errno())}")


def loopback_up() -> None:
    """A new network namespace starts with its loopback down; torchrun's rendezvous needs it up."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        request = struct.pack("16sH", b"lo", 0)
        flags = struct.unpack("16sH", fcntl.ioctl(probe, SIOCGIFFLAGS, request))[1]
        fcntl.ioctl(probe, SIOCSIFFLAGS, struct.pack("16sH", b"lo", flags | IFF_UP))


def _set_readonly(libc, path: str, readonly: bool, recursive: bool) -> None:
    attr = MountAttr(MOUNT_ATTR_RDONLY, 0, 0, 0) if readonly else MountAttr(0, MOUNT_ATTR_RDONLY, 0, 0)
    result = libc.syscall(SYS_MOUNT_SETATTR, AT_FDCWD, path.encode(), AT_RECURSIVE if recursive else 0,
                          ctypes.byref(attr), ctypes.sizeof(attr))
    _check(result, f"mount_setattr({path}, {'read-only' if readonly else 'read-write'})")


def in_own_user_namespace() -> bool:
    """Whether this process is in a user namespace of its own: the initial one maps every uid (0 0 4294967295).
    Outside one, mounting would change the machine's own mounts (as root) and must never be tried."""
    try:
        ranges = [line.split() for line in open("/proc/self/uid_map", encoding="ascii")]
    except OSError:
        return False
    return ranges != [["0", "0", "4294967295"]]


def confine_files(work_dir: str, hidden: list[str], shm_bytes: int | None) -> None:
    """Every mount read-only but `work_dir` (and a private /dev/shm); each hidden path covered: a directory
    by an empty read-only tmpfs, a file by /dev/null. Needs a user and mount namespace of our own
    (unshare --user --mount): refused anywhere else."""
    if not in_own_user_namespace():
        raise ConfinementError("asked to confine files outside a user namespace of its own; refused")
    libc = _libc()
    _check(libc.mount(work_dir.encode(), work_dir.encode(), None, MS_BIND, None), f"bind {work_dir}")
    for path in hidden:
        if os.path.isdir(path) and not os.path.islink(path):
            _check(libc.mount(b"tmpfs", path.encode(), b"tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
                              b"size=4k,mode=0555"), f"hide {path}")
        elif os.path.isfile(path) and not os.path.islink(path):
            _check(libc.mount(b"/dev/null", path.encode(), None, MS_BIND, None), f"hide {path}")
    _set_readonly(libc, "/", True, recursive=True)
    _set_readonly(libc, work_dir, False, recursive=False)
    os.chdir(work_dir)  # the old working directory is the mount beneath the new one, read-only now
    if shm_bytes and os.path.isdir("/dev/shm"):
        _check(libc.mount(b"tmpfs", b"/dev/shm", b"tmpfs", MS_NOSUID | MS_NODEV,
                          f"size={shm_bytes},mode=1777".encode()), "mount a private /dev/shm")


def drop_privileges() -> None:
    """No capabilities after exec (the bounding set emptied: root in the sandbox's user namespace, or a
    harness run as root without one, gets none), and no way to gain any (setuid binaries, file caps)."""
    libc = _libc()
    _check(libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl(NO_NEW_PRIVS)")
    libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
    if not _has_capability(CAP_SETPCAP):
        return  # an unprivileged process: its bounding set gives nothing on exec anyway
    last = int(open("/proc/sys/kernel/cap_last_cap", encoding="ascii").read())
    for capability in range(last + 1):
        _check(libc.prctl(PR_CAPBSET_DROP, capability, 0, 0, 0), f"drop capability {capability}")


def _has_capability(number: int) -> bool:
    for line in open("/proc/self/status", encoding="ascii"):
        if line.startswith("CapEff:"):
            return bool(int(line.split()[1], 16) >> number & 1)
    return False


def apply_rlimits(limits: dict[str, int]) -> None:
    """Soft = hard = the limit (never above the hard limit we were given: raising it needs privilege)."""
    for name, value in limits.items():
        kind = RLIMITS[name]
        _, hard = resource.getrlimit(kind)
        soft = value if hard == resource.RLIM_INFINITY else min(value, hard)
        new_hard = soft + CPU_GRACE_S if name == "CPU" else soft
        if hard != resource.RLIM_INFINITY:
            new_hard = min(new_hard, hard)
        resource.setrlimit(kind, (soft, new_hard))


def exec_command(spec: dict, command: list[str], status_fd: int | None) -> None:
    """In the process that becomes the command: limits, privileges, then exec (never returns)."""
    try:
        if status_fd is not None:
            os.close(status_fd)
        apply_rlimits(spec.get("rlimits", {}))
        drop_privileges()
        os.execvp(command[0], command)
    except (OSError, ConfinementError) as error:
        print(f"sandbox: could not start {command[0]}: {error}", file=sys.stderr, flush=True)
    os._exit(COMMAND_NOT_RUN)


def run_as_init(spec: dict, command: list[str], status_fd: int | None) -> int:
    """Pid 1 of the sandbox's pid namespace: start the command, forward termination signals to it, reap
    every orphan, and report the command's end; returning ends the namespace and all still in it."""
    child = os.fork()
    if child == 0:
        exec_command(spec, command, status_fd)
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, lambda number, frame: _forward(child, number))
    while True:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            return _report(status_fd, {"error": "the command vanished"}, CONFINEMENT_FAILED)
        if pid == child:
            break
    if os.WIFSIGNALED(status):
        return _report(status_fd, {"signal": os.WTERMSIG(status)}, 128 + os.WTERMSIG(status))
    code = os.waitstatus_to_exitcode(status)
    return _report(status_fd, {"exit": code}, code)


def _forward(child: int, number: int) -> None:
    try:
        os.kill(child, number)
    except ProcessLookupError:
        pass


def _report(status_fd: int | None, outcome: dict, code: int) -> int:
    if status_fd is not None:
        try:
            os.write(status_fd, json.dumps(outcome).encode() + b"\n")
        except OSError:
            pass
    return code


def confine_and_run(spec: dict, command: list[str]) -> int:
    status_fd = spec.get("status_fd")
    if status_fd is not None:
        os.set_inheritable(status_fd, False)  # the command never holds it
    try:
        if spec.get("loopback"):
            try:
                loopback_up()
            except OSError as error:
                raise ConfinementError(f"bring the loopback up: {error}") from None
        if spec.get("confine_files"):
            confine_files(os.getcwd(), spec.get("hidden", []), spec.get("shm_bytes"))
    except ConfinementError as error:
        print(f"sandbox: {error}", file=sys.stderr, flush=True)
        return _report(status_fd, {"error": str(error)}, CONFINEMENT_FAILED)
    if spec.get("init"):
        return run_as_init(spec, command, status_fd)
    exec_command(spec, command, status_fd)
    return COMMAND_NOT_RUN  # not reached


def join_cgroups(procs_files: list[str]) -> None:
    for path in procs_files:
        with open(path, "w", encoding="ascii") as handle:
            handle.write(str(os.getpid()))


def main(argv: list[str]) -> int:
    if "--" not in argv or argv.index("--") + 1 >= len(argv):
        print("usage: launcher.py (--join FILE ... | --spec JSON) -- COMMAND...", file=sys.stderr)
        return 2
    split = argv.index("--")
    options, command = argv[:split], argv[split + 1:]
    if options[:1] == ["--spec"] and len(options) == 2:
        return confine_and_run(json.loads(options[1]), command)
    files = [options[i + 1] for i in range(0, len(options) - 1, 2) if options[i] == "--join"]
    try:
        join_cgroups(files)
    except OSError as error:
        print(f"sandbox: could not join the run's cgroup: {error}", file=sys.stderr, flush=True)
        return CONFINEMENT_FAILED
    try:
        os.execvp(command[0], command)
    except OSError as error:
        print(f"sandbox: could not start {command[0]}: {error}", file=sys.stderr, flush=True)
        return COMMAND_NOT_RUN


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
