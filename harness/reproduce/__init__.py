"""Reproduce: run untrusted code. The sandbox and its limits, the per-seed runner, record folders, and
the parent side of re-evaluation.

May import: the core (rules, findings, errors, stats), submission (logs), data, the evaluator.
Never imports a submission's code: that happens only in reproduce/worker/, inside the sandbox's
child processes.
"""
