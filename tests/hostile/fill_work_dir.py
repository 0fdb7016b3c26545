"""Fill the work dir with 8 MiB files, each under the file-size limit, past its cap (stopping at
HOSTILE_MAX_BYTES, 400 MiB)."""

import os
import time

bound = int(os.environ.get("HOSTILE_MAX_BYTES", 400 << 20))
block = b"y" * (8 << 20)
for index in range(bound // len(block)):
    with open(f"fill_{index:03d}.bin", "wb") as handle:
        handle.write(block)
    print(f"wrote {(index + 1) * 8} MiB", flush=True)
    time.sleep(0.1)
print("fill_work_dir: never stopped", flush=True)
