"""The evaluation worker: the sandboxed child process in which a submission's script is imported.

    python -m harness.eval_worker --request REQUEST.json --out RESULT.json
    python -m torch.distributed.run --nproc_per_node N -m harness.eval_worker ...   (N processes)

It imports the submission's train_gpt.py (untrusted code runs here, never in the harness process),
builds its model through harness.adapters.build_model, scores the split with the trusted evaluator
(each rank its share of the windows under torchrun) and writes {"status": "ok" | "skip" | "error",
"adapter", "notes", "result" | "reason"} to RESULT.json from rank 0. See harness/adapters.py for what
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
from harness.adapters import AdapterSkip, EvalRequest, build_model


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
    from harness.bytes import build_byte_table
    from harness.data import load_tokens
    from harness.evaluator import DEFAULT_BATCH_TOKENS, evaluate

    module = import_script(Path(request.submission_dir) / rules.COUNTED_CODE_FILE)
    handle = build_model(module, request.artifact, device, request.seq_len)
    tokens = load_tokens(request.dataset_dir, request.split)
    if request.max_tokens:
        tokens = tokens[: request.max_tokens]
    table = build_byte_table(request.tokenizer, vocab_size=handle.vocab_size)
    result = evaluate(handle.logits_fn, tokens, table, seq_len=handle.seq_len, stride=request.stride, device=device,
                      batch_tokens=request.batch_tokens or DEFAULT_BATCH_TOKENS,
                      compile=request.compile and handle.compilable, progress=rank == 0)
    return {"status": "ok", "adapter": handle.adapter, "notes": handle.notes, "result": result.to_dict()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.eval_worker", description=__doc__.split("\n\n")[0])
    parser.add_argument("--request", required=True, help="JSON of a harness.adapters.EvalRequest")
    parser.add_argument("--out", required=True, help="where rank 0 writes the outcome JSON")
    args = parser.parse_args(argv)
    data = json.loads(Path(args.request).read_text(encoding="utf-8"))
    request = EvalRequest(**{f.name: data[f.name] for f in fields(EvalRequest) if f.name in data})
    from harness.evaluator import join_process_group, leave_process_group

    device, rank, _ = join_process_group(request.device)
    try:
        outcome = run(request, device, rank)
    except AdapterSkip as skip:
        outcome = {"status": "skip", "reason": str(skip)}
    except Exception as error:  # the script's or the model's failure: reported, with the traceback in the log
        traceback.print_exc()
        outcome = {"status": "error", "reason": f"{type(error).__name__}: {str(error)[:500]}"}
    if rank == 0:
        Path(args.out).write_text(json.dumps(outcome), encoding="utf-8")
    leave_process_group(wait_for_peers=outcome["status"] == "ok")
    return 0 if outcome["status"] == "ok" else 1


if __name__ == "__main__":
    sys.exit(main())
