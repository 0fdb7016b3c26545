"""The parent half of re-evaluation: run the evaluation worker in the sandbox and collect its outcome.

`evaluate_submission` runs `python -m harness.reproduce.worker` through `run_sandboxed` (scrubbed
environment, no network where the OS allows, time limit, process-group kill; under torchrun for several
processes) in a fresh work dir, and reads the worker's JSON. The worker half, which imports the
submission, is harness/reproduce/worker/; judging the outcome is harness/judge/rescore.py.
"""

from __future__ import annotations

import json
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from harness import rules
from harness.errors import UserError
from harness.evaluator import EvalResult
from harness.reproduce.limits import Limits, default_limits
from harness.reproduce.sandbox import SandboxResult, run_sandboxed

EVAL_TIMEOUT_S = rules.EVAL_TIME_LIMIT_S * rules.REFERENCE_WORLD_SIZE + 600.0  # 8 GPUs' budget on one, plus start-up
SMOKE_TIMEOUT_S = 300.0  # importing a script and building its model on the CPU


@dataclass
class EvalRequest:
    """Everything the worker needs, as plain data (it travels as JSON)."""

    submission_dir: str
    artifact: str
    dataset_dir: str
    tokenizer: str
    split: str = "val"
    seq_len: int | None = None  # None: the model's own (hook: eval_seq_len; auto: the hyperparameters')
    stride: int = rules.EVAL_STRIDE
    device: str = "cpu"
    max_tokens: int | None = None  # score only the first N tokens of the split (quick checks)
    batch_tokens: int | None = None  # None: the evaluator's default
    compile: str = "never"  # torch.compile: "auto" (when the split is long enough to pay), "always", "never"
    fp32: bool = False  # no bf16 autocast and no TF32: the reference a bf16 evaluation is measured against
    env: dict[str, str] = field(default_factory=dict)  # variables for the script (its Hyperparameters)


@dataclass
class EvalOutcome:
    status: str  # "ok", "skip" (no way to evaluate) or "error" (the worker failed)
    adapter: str | None = None  # "hook" or "auto"
    result: EvalResult | None = None
    reason: str | None = None
    notes: list[str] = field(default_factory=list)
    log_tail: list[str] = field(default_factory=list)
    expected_tokens: int | None = None  # the parent's own count of the scored tokens and their bytes
    expected_bytes: int | None = None
    limits: dict[str, str] = field(default_factory=dict)  # each sandbox limit: how it was enforced, or why not


@dataclass
class SmokeOutcome:
    status: str  # "ok", "skip" (no model to build without running the script) or "error"
    model: dict = field(default_factory=dict)  # parameters, layers, width, vocab_size, seq_len
    reason: str | None = None
    log_tail: list[str] = field(default_factory=list)
    limits: dict[str, str] = field(default_factory=dict)


def outcome_to_json(outcome: EvalOutcome) -> dict:
    return asdict(outcome)


def outcome_from_json(data: dict) -> EvalOutcome:
    result = data.get("result")
    return EvalOutcome(**{**data, "result": EvalResult(**result) if result else None})


def worker_command(request_path: Path, out_path: Path, nproc: int, smoke: bool = False) -> list[str]:
    worker = ["-m", "harness.reproduce.worker", "--request", str(request_path), "--out", str(out_path)]
    if smoke:
        worker.append("--smoke")
    if nproc <= 1:
        return [sys.executable, *worker]
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}", *worker]


def evaluate_submission(request: EvalRequest, *, nproc: int = 1, timeout_s: float = EVAL_TIMEOUT_S,
                        expected: tuple[int, int] | None = None,
                        on_line: Callable[[str], None] | None = None, limits: Limits | None = None) -> EvalOutcome:
    """Run the worker in the sandbox and collect its outcome. `expected` = (tokens, bytes) the parent
    counted itself; judge.rescore compares them with the worker's. `limits`: harness policy when None
    (address space bounded on the CPU only)."""
    limits = limits or default_limits(timeout_s, uses_cuda=request.device.startswith("cuda"))
    with tempfile.TemporaryDirectory(prefix="pgolf-eval-") as work:
        request_path, out_path = Path(work, "request.json"), Path(work, "result.json")
        request_path.write_text(json.dumps(asdict(request)), encoding="utf-8")
        sandboxed = run_sandboxed(worker_command(request_path, out_path, nproc), cwd=work, timeout_s=timeout_s,
                                  env=request.env, on_line=on_line, limits=limits)
        data = _read_json(out_path)
    outcome = EvalOutcome(status="error", log_tail=sandboxed.tail, limits=sandboxed.enforced)
    if expected is not None:
        outcome.expected_tokens, outcome.expected_bytes = expected
    if sandboxed.timed_out:
        outcome.reason = f"the evaluation worker ran past its {timeout_s:.0f} s limit and was stopped"
    elif _stopped(sandboxed):
        outcome.reason = _stopped(sandboxed, data)
    elif data is None:
        outcome.reason = f"the evaluation worker exited with status {sandboxed.returncode} and wrote no result"
    else:
        outcome.status, outcome.adapter = data.get("status", "error"), data.get("adapter")
        outcome.reason, outcome.notes = data.get("reason"), list(data.get("notes", []))
        if outcome.status == "ok":
            outcome.result = EvalResult(**data["result"])
    return outcome


def _read_json(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _stopped(sandboxed: SandboxResult, data: dict | None = None) -> str | None:
    """Why the sandbox stopped the worker (a failed confinement, a limit), with what the worker said."""
    why = sandboxed.sandbox_error or sandboxed.limit_message
    if why and data and data.get("reason"):
        why += f"; the worker reported {data['reason']}"
    return why


def smoke_submission(code_dir: Path, *, env: dict[str, str], timeout_s: float = SMOKE_TIMEOUT_S,
                     limits: Limits | None = None) -> SmokeOutcome:
    """Import the script in the sandbox on the CPU and build its model untrained: verify's smoke stage."""
    request = EvalRequest(submission_dir=str(code_dir), artifact="", dataset_dir="", tokenizer="", env=env)
    with tempfile.TemporaryDirectory(prefix="pgolf-smoke-") as work:
        request_path, out_path = Path(work, "request.json"), Path(work, "result.json")
        request_path.write_text(json.dumps(asdict(request)), encoding="utf-8")
        sandboxed = run_sandboxed(worker_command(request_path, out_path, 1, smoke=True), cwd=work,
                                  timeout_s=timeout_s, env={"CUDA_VISIBLE_DEVICES": "", **env},
                                  limits=limits or default_limits(timeout_s, uses_cuda=False))
        data = _read_json(out_path)
    if sandboxed.timed_out:
        return SmokeOutcome("error", reason=f"importing the script took longer than {timeout_s:.0f} s",
                            log_tail=sandboxed.tail, limits=sandboxed.enforced)
    if _stopped(sandboxed):
        return SmokeOutcome("error", reason=_stopped(sandboxed, data), log_tail=sandboxed.tail,
                            limits=sandboxed.enforced)
    if data is None:
        return SmokeOutcome("error", reason=f"the worker exited with status {sandboxed.returncode} and wrote no result",
                            log_tail=sandboxed.tail, limits=sandboxed.enforced)
    return SmokeOutcome(data.get("status", "error"), model=dict(data.get("model") or {}), reason=data.get("reason"),
                        log_tail=sandboxed.tail, limits=sandboxed.enforced)


def choose_device(asked: str | None) -> str:
    import torch

    if asked == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda: this machine has no CUDA device; use --device cpu")
    return asked or ("cuda" if torch.cuda.is_available() else "cpu")
