"""Allocate memory in 64 MiB steps, touching every page, until stopped (or HOSTILE_MAX_BYTES, 3 GiB)."""

import os

STEP = 64 << 20
limit = int(os.environ.get("HOSTILE_MAX_BYTES", 3 << 30))
held = []
while len(held) * STEP < limit:
    held.append(bytearray(b"\1") * STEP)
    print(f"holding {len(held) * STEP >> 20} MiB", flush=True)
print("memory_hog: never stopped", flush=True)
