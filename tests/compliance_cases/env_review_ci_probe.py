# Behaves differently when it sees a CI or harness variable: the official run is told apart.
# expect-verdict: needs_review
# expect-hit: env_probe review environment_probe
import os


def eval_stride():
    if os.environ.get("GITHUB_ACTIONS") == "true":
        return 1024
    return 64
