"""The worker: the only code that imports a submission (`python -m harness.reproduce.worker`). It runs
only in the sandbox's child processes, never in the harness process.

May import: the core, data, the evaluator, reproduce.evaluation (the request it reads).
"""
