"""The evaluation worker: the sandboxed child process in which a submission's script is imported.

    python -m harness.reproduce.worker --request REQUEST.json --out RESULT.json
    python -m harness.reproduce.worker --smoke --request REQUEST.json --out RESULT.json   (import, build, count)
    python -m torch.distributed.run --nproc_per_node N -m harness.reproduce.worker ...   (N processes)

It imports the submission's train_gpt.py (untrusted code runs here, never in the harness process);
with --smoke it only builds the untrained model on the CPU and reports its size (verify's smoke stage).
Otherwise it
builds its model through adapters.build_model, scores the split with the trusted evaluator
(each rank its share of the windows under torchrun) and writes {"status": "ok" | "skip" | "error",
"adapter", "notes", "result" | "reason"} to RESULT.json from rank 0. See adapters.py for what
this boundary does and does not protect.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import traceback
from dataclasses import fields
from pathlib import Path
from types import ModuleType

from harness import rules
from harness.reproduce.evaluation import EvalRequest
from harness.reproduce.worker.adapters import AdapterSkip, build_model, describe_model


def import_script(path: Path) -> ModuleType:
    """Import the script as a module named submission_train_gpt (so its `if __name__ == "__main__"`
    block does not run), with its folder first on sys.path for its helper modules."""
    sys.path.insert(0, str(path.parent))
    spec = importlib.util.spec_from_file_location("submission_train_gpt", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses and pickling look the module up by name
    spec.loader.exec_module(module)
    return module


def run(request: EvalRequest, device: str, rank: int) -> dict:
    from harness.data.bytes import build_byte_table
    from harness.data.shards import load_tokens
    from harness.evaluator import COMPILE_MIN_WINDOWS, DEFAULT_BATCH_TOKENS, evaluate

    module = import_script(Path(request.submission_dir) / rules.COUNTED_CODE_FILE)
    if request.fp32:
        import torch

        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    handle = build_model(module, request.artifact, device, request.seq_len, fp32=request.fp32)
    tokens = load_tokens(request.dataset_dir, request.split)
    if request.max_tokens:
        tokens = tokens[: request.max_tokens]
    table = build_byte_table(request.tokenizer, vocab_size=handle.vocab_size)
    stride = min(request.stride, handle.seq_len)
    if stride < request.stride:  # a window no longer than the stride: windows side by side, none overlapping
        handle.notes.append(f"stride {stride}: the model's window of {handle.seq_len} is shorter than {request.stride}")
    settings = dict(seq_len=handle.seq_len, stride=stride, device=device,
                    batch_tokens=request.batch_tokens or DEFAULT_BATCH_TOKENS, progress=rank == 0)
    windows = max(len(tokens) - 1, 0) // stride
    compiled = request.compile == "always" or (request.compile == "auto" and windows >= COMPILE_MIN_WINDOWS)
    try:
        result = evaluate(handle.logits_fn, tokens, table, compile=compiled, **settings)
    except Exception as error:
        if not compiled:
            raise
        # torch.compile could not take this script's model: the same arithmetic eagerly, only slower.
        handle.notes.append(f"torch.compile failed ({type(error).__name__}: {str(error)[:200]}); evaluated eagerly")
        result = evaluate(handle.logits_fn, tokens, table, compile=False, **settings)
    if compiled and "evaluated eagerly" not in " ".join(handle.notes):
        handle.notes.append("compiled with torch.compile")
    return {"status": "ok", "adapter": handle.adapter, "notes": handle.notes, "result": result.to_dict()}


def smoke(request: EvalRequest) -> dict:
    module = import_script(Path(request.submission_dir) / rules.COUNTED_CODE_FILE)
    return {"status": "ok", "model": describe_model(module)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.reproduce.worker", description=__doc__.split("\n\n")[0])
    parser.add_argument("--request", required=True, help="JSON of a harness.reproduce.evaluation.EvalRequest")
    parser.add_argument("--out", required=True, help="where rank 0 writes the outcome JSON")
    parser.add_argument("--smoke", action="store_true", help="only import the script and describe its model")
    args = parser.parse_args(argv)
    data = json.loads(Path(args.request).read_text(encoding="utf-8"))
    request = EvalRequest(**{f.name: data[f.name] for f in fields(EvalRequest) if f.name in data})
    if args.smoke:
        return _write_outcome(args.out, _guarded(lambda: smoke(request)))
    from harness.evaluator import join_process_group, leave_process_group

    device, rank, _ = join_process_group(request.device)
    outcome = _guarded(lambda: run(request, device, rank))
    if rank == 0:
        _write_outcome(args.out, outcome)
    leave_process_group(wait_for_peers=outcome["status"] == "ok")
    return 0 if outcome["status"] == "ok" else 1


def _guarded(work) -> dict:
    try:
        return work()
    except AdapterSkip as skip:
        return {"status": "skip", "reason": str(skip)}
    except BaseException as error:  # the script's or the model's failure (SystemExit included): reported,
        traceback.print_exc()      # with the traceback in the log
        return {"status": "error", "reason": f"{type(error).__name__}: {str(error)[:500]}"}


def _write_outcome(path: str, outcome: dict) -> int:
    Path(path).write_text(json.dumps(outcome), encoding="utf-8")
    return 0 if outcome["status"] == "ok" else 1


if __name__ == "__main__":
    sys.exit(main())
