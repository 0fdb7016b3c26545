# Imports a module whose name is computed at run time.
# expect-verdict: needs_review
# expect-hit: dynamic_code review computed_import
import importlib
import os


def backend():
    return importlib.import_module(os.environ.get("BACKEND", "torch") + "_ext")
