"""Write outside the work dir: its parent (../), and every path in HOSTILE_TARGETS (os.pathsep-separated:
a file under the user's home, /tmp/<canary>, the harness's own folder). Prints one line per attempt."""

import os

targets = ["../escaped_" + os.environ["HOSTILE_TOKEN"]] + os.environ["HOSTILE_TARGETS"].split(os.pathsep)
for target in targets:
    try:
        with open(target, "w") as handle:
            handle.write("escaped\n")
        print(f"wrote {target}", flush=True)
    except OSError as error:
        print(f"refused {target}: errno {error.errno}", flush=True)
