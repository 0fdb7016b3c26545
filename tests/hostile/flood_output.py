"""Print without end: a 1 MiB line with no newline first, then numbered lines (stopping at
HOSTILE_MAX_BYTES, 64 MiB)."""

import os
import sys

bound = int(os.environ.get("HOSTILE_MAX_BYTES", 64 << 20))
sys.stdout.write("z" * (1 << 20))
printed, number = 1 << 20, 0
while printed < bound:
    line = f"line {number} " + "." * 100 + "\n"
    sys.stdout.write(line)
    printed, number = printed + len(line), number + 1
sys.stdout.flush()
print("flood_output: never stopped", flush=True)
