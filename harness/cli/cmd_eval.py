"""`harness eval DIR --artifact PATH`: re-score a submission's artifact with the trusted evaluator.

The submission's model is built in a sandboxed worker (harness/reproduce/worker/adapters.py: the load_eval_model hook or
the baseline-family auto-adapter), the validation split is scored with the stride-64 sliding window by
harness/evaluator.py, and the harness counts the split's tokens and bytes itself to check the worker's.
With --claimed, the trusted val_bpb is compared with the submission's claim (submission.json's val_bpb,
or a given value) within --tolerance, default rules.EVAL_CLAIM_TOLERANCE_BPB (5e-4 bpb: what bf16
arithmetic, a different attention kernel or batch shape can move a score by, far below the 0.005-nat
record margin). Exit 0 when the number was produced (and matches the claim if asked), 1 when the claim
is off or no number could be produced, 2 on bad input.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from rich.console import Console
from rich.table import Table

from harness import rules
from harness.cli.arguments import add_data_arguments, parse_env
from harness.cli.output import add_output_arguments, emit_verdict
from harness.errors import UserError
from harness.findings import Verdict
from harness.judge.rescore import compare_with_claim, rescore_findings
from harness.pipeline import data_for
from harness.submission.folder import load_submission

FROM_METADATA = "submission.json"  # --claimed without a value: read the claim from the folder


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "eval", help="re-evaluate a submission's artifact with the trusted sliding-window evaluator",
        description="Score the artifact of a submission on the validation split with the harness's own "
                    "sliding-window evaluator; the submission's code runs only in a sandboxed worker.",
    )
    parser.add_argument("folder", help="submission folder holding train_gpt.py")
    parser.add_argument("--artifact", required=True, metavar="PATH", help="the compressed model file the script wrote")
    add_data_arguments(parser, "dataset folder with fineweb_val_*.bin")
    parser.add_argument("--stride", type=int, default=rules.EVAL_STRIDE, help=f"window stride (default {rules.EVAL_STRIDE})")
    parser.add_argument("--seq-len", type=int, metavar="N", help="window length (default: the model's own)")
    parser.add_argument("--nproc", type=int, default=1, help="processes (torchrun; one per GPU on CUDA)")
    parser.add_argument("--device", choices=("cpu", "cuda"), help="default: cuda when available")
    parser.add_argument("--max-tokens", type=int, metavar="N", help="score only the first N tokens of the split")
    parser.add_argument("--claimed", nargs="?", const=FROM_METADATA, metavar="VALUE",
                        help="compare with the claimed val_bpb: submission.json's, or VALUE")
    parser.add_argument("--tolerance", type=float, default=rules.EVAL_CLAIM_TOLERANCE_BPB,
                        help=f"allowed |trusted - claimed| in bpb (default {rules.EVAL_CLAIM_TOLERANCE_BPB:g})")
    parser.add_argument("--env", metavar="KEY=VALUE", action="append", default=[],
                        help="environment variable for the script (its Hyperparameters), repeatable")
    parser.add_argument("--compile", choices=("auto", "always", "never"), default="auto",
                        help="torch.compile on CUDA: auto (when the split is long enough for it to pay), always, never")
    parser.add_argument("--fp32", action="store_true",
                        help="evaluate in fp32 (no bf16 autocast, no TF32): the reference to measure bf16 against")
    parser.add_argument("--timeout", type=float, metavar="S", help="wall-clock limit of the worker in seconds")
    add_output_arguments(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from harness.data.bytes import count_scored
    from harness.reproduce.evaluation import EVAL_TIMEOUT_S, EvalRequest, choose_device, evaluate_submission

    folder, artifact = check_paths(args.folder, args.artifact)
    dataset_dir, tokenizer, _ = data_for(load_submission(folder), args.data, args.tokenizer, ("val",))
    device = choose_device(args.device)
    check_numbers(args)
    claimed = read_claim(folder, args.claimed) if args.claimed is not None else None
    request = EvalRequest(
        submission_dir=str(folder), artifact=str(artifact), dataset_dir=str(dataset_dir.resolve()),
        tokenizer=str(tokenizer.resolve()), seq_len=args.seq_len, stride=args.stride, device=device,
        max_tokens=args.max_tokens, compile=args.compile if device == "cuda" else "never", fp32=args.fp32,
        env=parse_env(args.env, ()),
    )
    status = Console(stderr=True, highlight=False)
    expected = count_scored(dataset_dir, tokenizer, args.max_tokens)
    status.print(f"eval: {folder.name} on {dataset_dir.name} ({expected[0]:,} tokens), {args.nproc} process(es) on {device}")
    # The worker's lines (its progress among them) go to stderr, also with --json: stdout stays the result.
    outcome = evaluate_submission(request, nproc=args.nproc, timeout_s=args.timeout or EVAL_TIMEOUT_S, expected=expected,
                                  on_line=lambda line: status.print(f"  {line}", markup=False, highlight=False))
    script = str(folder / rules.COUNTED_CODE_FILE)
    verdict = Verdict(submission=str(folder), stage="eval", findings=rescore_findings(outcome, script))
    if outcome.result is not None:
        verdict.measurements.update(outcome.result.to_dict(), adapter=outcome.adapter, notes=outcome.notes)
        if claimed is not None:
            verdict.findings.append(compare_with_claim(outcome.result, claimed[0], args.tolerance, claimed[1]))
        if not args.json:
            print_numbers(outcome.result, outcome.adapter, claimed)
    if outcome.result is None:  # exit 1 with nothing failed: the console says why (README, exit codes)
        verdict.measurements["incomplete_because"] = f"eval.rescore: {outcome.reason or 'the worker produced no result'}"
    code = emit_verdict(verdict, args)
    return code if outcome.result is not None else 1


def check_paths(folder_arg: str, artifact_arg: str) -> tuple[Path, Path]:
    folder, artifact = Path(folder_arg).resolve(), Path(artifact_arg).resolve()
    if not folder.is_dir():
        raise UserError("no such submission folder", folder_arg)
    if not (folder / rules.COUNTED_CODE_FILE).is_file():
        raise UserError(f"holds no {rules.COUNTED_CODE_FILE}", folder_arg)
    if not artifact.is_file():
        raise UserError("no such artifact file", artifact_arg)
    if artifact.stat().st_size > rules.MAX_FILE_BYTES:
        raise UserError(f"is over {rules.MAX_FILE_BYTES:,} bytes; the harness refuses artifacts that large", artifact_arg)
    return folder, artifact


def check_numbers(args: argparse.Namespace) -> None:
    if args.stride < 1:
        raise UserError(f"--stride must be at least 1, got {args.stride}")
    if args.seq_len is not None and args.seq_len < args.stride:
        raise UserError(f"--seq-len must be at least the stride ({args.stride}), got {args.seq_len}")
    if args.nproc < 1:
        raise UserError(f"--nproc must be at least 1, got {args.nproc}")
    if args.max_tokens is not None and args.max_tokens < 2:
        raise UserError(f"--max-tokens must be at least 2, got {args.max_tokens}")
    if not args.tolerance >= 0:
        raise UserError(f"--tolerance must be a non-negative number, got {args.tolerance}")
    if args.timeout is not None and not args.timeout > 0:
        raise UserError(f"--timeout must be a positive number of seconds, got {args.timeout}")


def read_claim(folder: Path, claimed: str) -> tuple[float, str]:
    """(claimed val_bpb, where it came from): a number given on the command line, or submission.json's."""
    if claimed != FROM_METADATA:
        try:
            value = float(claimed)
        except ValueError:
            raise UserError(f"--claimed takes a val_bpb number (or nothing, to read {FROM_METADATA}), got {claimed!r}") from None
        if not math.isfinite(value):
            raise UserError(f"--claimed must be a finite number, got {claimed!r}")
        return value, "--claimed"
    path = folder / FROM_METADATA
    try:
        metadata = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"no {FROM_METADATA} to read the claim from; give --claimed VALUE", folder) from None
    except (OSError, ValueError) as error:
        raise UserError(f"cannot be read as JSON ({error}); give --claimed VALUE", path) from None
    value = metadata.get("val_bpb") if isinstance(metadata, dict) else None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise UserError("holds no numeric val_bpb; give --claimed VALUE", path)
    return float(value), f"{FROM_METADATA} val_bpb"


def print_numbers(result, adapter: str | None, claimed: tuple[float, str] | None) -> None:
    table = Table(title="trusted sliding-window evaluation", show_header=False)
    rows = [("val_loss", f"{result.val_loss:.8f} nats/token"), ("val_bpb", f"{result.val_bpb:.8f}"),
            ("tokens", f"{result.tokens:,}"), ("bytes", f"{result.bytes:,}"),
            ("windows", f"{result.windows:,} of {result.seq_len} (stride {result.stride})"),
            ("time", f"{result.wall_s:.1f} s on {result.world_size} process(es); the first batch (with any "
                     f"compilation) done after {result.warmup_s:.1f} s"), ("adapter", adapter or "-")]
    if claimed is not None:
        rows.append(("claimed", f"{claimed[0]:.8f} ({claimed[1]}); delta {result.val_bpb - claimed[0]:+.2e}"))
    for key, value in rows:
        table.add_row(key, value)
    Console(highlight=False).print(table)
