"""Kill the parent process and the pids in HOSTILE_PIDS (the harness that runs us) with SIGKILL, then
say whether we are still here."""

import os
import signal
import time

for pid in [os.getppid()] + [int(pid) for pid in os.environ.get("HOSTILE_PIDS", "").split(",") if pid]:
    try:
        os.kill(pid, signal.SIGKILL)
        print(f"sent SIGKILL to {pid}", flush=True)
    except OSError as error:
        print(f"could not signal {pid}: errno {error.errno}", flush=True)
time.sleep(1)
print("still here", flush=True)
