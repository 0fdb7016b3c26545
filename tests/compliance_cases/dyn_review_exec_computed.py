# Runs code taken from the environment: the scanner cannot read it.
# expect-verdict: needs_review
# expect-hit: dynamic_code review dynamic_exec
import os


def apply_patch():
    exec(os.environ.get("EXTRA_CODE", "pass"))
