"""Fork children that stay alive until a fork is refused (or HOSTILE_MAX_TASKS, 300, have started)."""

import os
import sys
import time

bound = int(os.environ.get("HOSTILE_MAX_TASKS", 300))
for started in range(bound):
    try:
        child = os.fork()
    except OSError as error:
        print(f"fork refused after {started} children: {error!r}", flush=True)
        sys.exit(1)
    if child == 0:
        time.sleep(60)
        os._exit(0)
print("fork_bomb: never refused", flush=True)
