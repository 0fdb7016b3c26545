"""Write one file past the file-size limit, 1 MiB at a time (stopping at HOSTILE_MAX_BYTES, 200 MiB)."""

import os

bound = int(os.environ.get("HOSTILE_MAX_BYTES", 200 << 20))
block = b"x" * (1 << 20)
with open("big.bin", "wb") as handle:
    for written in range(0, bound, len(block)):
        handle.write(block)
        handle.flush()
print("big_file: never stopped", flush=True)
