"""Burn CPU in a loop until stopped (or HOSTILE_MAX_SECONDS, 20 s of wall clock)."""

import os
import time

deadline = time.monotonic() + float(os.environ.get("HOSTILE_MAX_SECONDS", 20))
count = 0
while time.monotonic() < deadline:
    count += 1
print("spin_cpu: never stopped", flush=True)
