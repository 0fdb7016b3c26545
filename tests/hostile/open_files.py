"""Open files until refused (or HOSTILE_MAX_FILES, 100,000, are open), then say how many were open."""

import os

held = []
try:
    for _ in range(int(os.environ.get("HOSTILE_MAX_FILES", 100_000))):
        held.append(open(os.devnull))
except OSError:
    print(f"refused with {len(held)} open", flush=True)
    raise
print("open_files: never refused", flush=True)
