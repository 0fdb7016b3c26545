"""Leave a daemon behind: a grandchild in a session of its own (out of the process group), sleeping 60 s
after we exit. Its command line holds HOSTILE_TOKEN, so the test can look for it."""

import os
import subprocess
import sys

code = "import time; time.sleep(60)"
subprocess.Popen([sys.executable, "-c", code, os.environ["HOSTILE_TOKEN"]], start_new_session=True,
                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
print("daemon started", flush=True)
