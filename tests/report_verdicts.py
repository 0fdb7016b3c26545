"""Verdicts to render in the report tests: the tiny record's real `check` verdict, and a `verify`
verdict built from its logs through the pipeline's own measurement code (as if they were the reproduced
runs), with a real worker failure text (torch's unpickling error, escape codes included)."""

from __future__ import annotations

import copy
import functools
from pathlib import Path
from types import SimpleNamespace

from harness import pipeline
from harness.findings import PASS, SKIP, Verdict, finding
from harness.judge.evidence import Hardware, SeedRun

ROOT = Path(__file__).resolve().parent.parent
TINY_RECORD = ROOT / "submissions" / "2026-11-24_reference_tiny"
SEEDS = (1337, 42, 2025)
# What `harness eval` said about an artifact holding a datetime.date pickle (torch 2.13, this machine).
UNPICKLING_ERROR = (
    "UnpicklingError: Weights only load failed. This file can still be loaded, to do so you have two options, "
    "\x1b[1mdo those steps only if you trust the source of the checkpoint\x1b[0m. \n\t(1) In PyTorch 2.6, we changed "
    "the default value of the `weights_only` argument in `torch.load` from `False` to `True`. Re-running "
    "`torch.load` with `weights_only` set to `False` will likely succeed, but it can result in arbitrary code "
    "execution. Do it only if you got the file from a trusted source.\n\t(2) Alternatively, to load with `weig")
LOG_TAIL = ("\tWeightsUnpickler error: Unsupported global: GLOBAL datetime.date was not an allowed global by default. "
            "Please use `torch.serialization.add_safe_globals([datetime.date])` or the "
            "`torch.serialization.safe_globals([datetime.date])` context manager to allowlist this global if you "
            "trust this class/function. |  | Check the documentation of torch.load to learn more about types accepted "
            "by default with weights_only https://pytorch.org/docs/stable/generated/torch.load.html.")


@functools.cache
def _checked() -> Verdict:
    return pipeline.check(str(TINY_RECORD))


def check_verdict() -> Verdict:
    """A fresh copy each call (tests change them); the check itself runs once."""
    return copy.deepcopy(_checked())


def verify_verdict() -> Verdict:
    """The check verdict turned into a verify verdict whose reproduced runs are the folder's own logs."""
    verdict = check_verdict()
    verdict.stage = "verify"
    logs = verdict.measurements["logs"]
    runs = []
    for seed in SEEDS:
        logged = logs[f"train_seed{seed}.log"]
        runs.append(SeedRun(seed=seed, status="ok", log=str(TINY_RECORD / f"train_seed{seed}.log"),
                            artifact_bytes=logged["model_bytes"], code_bytes=logged["code_bytes"],
                            own_val_bpb=logged["val_bpb"], own_val_loss=logged["val_loss"],
                            trusted_val_bpb=logged["val_bpb"] + 2e-4, train_time_s=logged["train_time_s"],
                            eval_time_s=logged["eval_time_s"], wall_s=9.0))
    hardware = Hardware("CPU (2 cores)", 1, False)
    smoke = SimpleNamespace(status="ok", model={})
    verdict.measurements.update(pipeline.verify_measurements(runs, hardware, list(SEEDS), smoke, None, None, "cpu"))
    verdict.measurements.update(verify_status="verified_with_warnings", incomplete_because=None)
    verdict.extend([finding("reproduce.run", PASS, f"seed {seed}: the script ran to its end in the sandbox",
                            file=str(TINY_RECORD / f"train_seed{seed}.log"), seed=seed) for seed in SEEDS])
    verdict.extend([finding("eval.rescore", SKIP, f"no independent re-evaluation: {UNPICKLING_ERROR}",
                            file=str(TINY_RECORD / "train_gpt.py"), log_tail=LOG_TAIL)])
    return verdict
