"""Read what is not ours: the environment, the files in HOSTILE_TARGETS (~/.ssh/id_rsa, ~/.netrc, the
harness's .git/config), and the environment of the parent and of the pids in HOSTILE_PIDS through /proc.
Prints everything it could read."""

import os

print("environ:", sorted(os.environ.items()), flush=True)
for target in os.environ["HOSTILE_TARGETS"].split(os.pathsep):
    try:
        with open(target, "rb") as handle:
            print(f"read {target}: {handle.read(4096)!r}", flush=True)
    except OSError as error:
        print(f"refused {target}: errno {error.errno}", flush=True)
pids = [os.getppid()] + [int(pid) for pid in os.environ.get("HOSTILE_PIDS", "").split(",") if pid]
for pid in pids:
    try:
        with open(f"/proc/{pid}/environ", "rb") as handle:
            print(f"read /proc/{pid}/environ: {handle.read()!r}", flush=True)
    except OSError as error:
        print(f"refused /proc/{pid}/environ: errno {error.errno}", flush=True)
