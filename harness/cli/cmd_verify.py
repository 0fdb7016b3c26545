"""`harness verify DIR`: reproduce a submission end to end and judge it with evidence.

Parses and checks the arguments (bad input is one line and exit 2), hands the work to
harness.pipeline.verify, shows each stage and each seed's progress on stderr, prints the verdict, and
says where verdict.json and verdict.md were written. Exit 0 verified (with or without warnings),
1 not verified or incomplete, 2 usage error or unreadable input.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console

from harness import pipeline, rules
from harness.cli.arguments import add_data_arguments, add_policy_argument, parse_env, parse_seeds
from harness.cli.output import add_output_arguments, emit_verdict
from harness.cli.seeds_view import ProgressReporter
from harness.errors import UserError
from harness.probe.split import DEFAULT_PROBE_TOKENS
from harness.reproduce.runner import DEFAULT_TIMEOUT_S

EXIT = {pipeline.VERIFIED: 0, pipeline.VERIFIED_WITH_WARNINGS: 0, pipeline.NOT_VERIFIED: 1, pipeline.INCOMPLETE: 1}


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "verify", help="reproduce a submission (train each seed, rebuild, re-evaluate) and judge it",
        description="check -> smoke -> reproduce -> re-evaluate -> judge -> report. Everything is written "
                    "under --out (default runs/verify/<folder>/): the run dirs, verdict.json and verdict.md. "
                    "Finished seeds and evaluations are reused unless --force.",
    )
    parser.add_argument("folder", help="submission folder (submission.json, train_gpt.py, logs, README.md)")
    parser.add_argument("--seeds", help="comma-separated seeds (default: the seeds the submission reports, else "
                        + ",".join(map(str, rules.DEFAULT_VERIFY_SEEDS)) + ")")
    parser.add_argument("--nproc", type=int, default=1, help="processes (GPUs) per run and for re-evaluation")
    add_data_arguments(parser, "dataset folder with fineweb_train_*.bin / fineweb_val_*.bin (only val with --skip-train)")
    parser.add_argument("--against", metavar="REF_DIR", help="reference record for the significance test "
                        "(default: the reference baseline record, for record-track submissions)")
    add_policy_argument(parser)
    parser.add_argument("--env", metavar="KEY=VALUE", action="append", default=[],
                        help="environment variable for the script (repeatable), e.g. --env MAX_WALLCLOCK_SECONDS=60")
    parser.add_argument("--out", metavar="RUN_DIR", help="where runs and verdicts go (default runs/verify/<folder>)")
    parser.add_argument("--static-only", action="store_true", help="only the static checks (as `harness check`)")
    parser.add_argument("--skip-train", action="store_true", help="do not train: judge the --artifact given")
    parser.add_argument("--artifact", metavar="PATH", help="with --skip-train: the artifact to re-evaluate")
    parser.add_argument("--attention-shim", action="store_true",
                        help="put an SDPA stand-in for FlashAttention 3 (flash_attn_interface) beside the script")
    parser.add_argument("--device", choices=("cpu", "cuda"), help="re-evaluation device (default: cuda when available)")
    parser.add_argument("--timeout", metavar="S", type=float, default=DEFAULT_TIMEOUT_S,
                        help=f"wall-clock limit per seed in seconds (default {DEFAULT_TIMEOUT_S:g})")
    parser.add_argument("--force", action="store_true", help="rerun finished seeds and evaluations")
    parser.add_argument("--no-probe", action="store_true",
                        help="skip the legality probe (a shortened run on a stream of known entropy; harness probe)")
    parser.add_argument("--probe-tokens", type=int, default=DEFAULT_PROBE_TOKENS, metavar="N",
                        help=f"length of the probe's validation stream (default {DEFAULT_PROBE_TOKENS:,})")
    parser.add_argument("--allow-network", action="store_true",
                        help="run the code even where the OS cannot cut it off the network (no network namespace)")
    add_output_arguments(parser)
    parser.set_defaults(handler=run)


def build_plan(args: argparse.Namespace) -> pipeline.VerifyPlan:
    folder = Path(args.folder)
    if not folder.is_dir():
        raise UserError("no such submission folder", args.folder)
    if args.nproc < 1:
        raise UserError(f"--nproc must be at least 1, got {args.nproc}")
    if args.nproc > 1 and not args.static_only:
        import torch

        available = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if available < args.nproc:
            raise UserError(f"--nproc {args.nproc} needs {args.nproc} CUDA devices; this machine has {available}")
    if args.skip_train != (args.artifact is not None):
        raise UserError("--skip-train and --artifact PATH go together: the artifact is what is judged instead of training")
    artifact = Path(args.artifact) if args.artifact else None
    if artifact is not None and not artifact.is_file():
        raise UserError("no such artifact file", args.artifact)
    if artifact is not None and artifact.stat().st_size > rules.MAX_FILE_BYTES:
        raise UserError(f"is over {rules.MAX_FILE_BYTES:,} bytes; the harness refuses artifacts that large", args.artifact)
    if not args.timeout > 0:
        raise UserError(f"--timeout must be a positive number of seconds, got {args.timeout:g}")
    if args.against is not None and not Path(args.against).is_dir():
        raise UserError("no such reference folder", args.against)
    out_dir = Path(args.out) if args.out else Path("runs") / "verify" / folder.resolve().name
    if out_dir.resolve().is_relative_to(folder.resolve()):
        raise UserError("is inside the submission folder, which every run copies; choose another --out", out_dir)
    return pipeline.VerifyPlan(
        folder=folder.resolve(), out_dir=out_dir.resolve(), seeds=parse_seeds(args.seeds) if args.seeds else None,
        nproc=args.nproc, data=args.data, tokenizer=args.tokenizer, against=args.against, env=parse_env(args.env),
        static_only=args.static_only, artifact=artifact, force=args.force, attention_shim=args.attention_shim,
        policy=args.policy, timeout_s=args.timeout, device=args.device, allow_network=args.allow_network,
        probe=not args.no_probe, probe_tokens=args.probe_tokens)


class VerifyProgress(ProgressReporter):
    """Stage lines on stderr, then the seeds' progress as run-seeds shows it."""

    def stage(self, name: str, message: str) -> None:
        self.console.print(f"[bold]{name}[/]: {message}")

    def eval_line(self, seed: int, line: str) -> None:
        """What the evaluation worker prints (its progress, a failure's traceback), as it comes."""
        self.console.print(f"  seed {seed}: {line}", markup=False, highlight=False)


def run(args: argparse.Namespace) -> int:
    plan = build_plan(args)
    status = Console(stderr=True, highlight=False)
    with VerifyProgress(status) as reporter:
        result = pipeline.verify(plan, reporter)
    code = emit_verdict(result.verdict, args, full_text=result.files.get("markdown"))
    if not args.json:
        console = Console(highlight=False)
        where = ", ".join(str(path) for path in result.files.values())
        console.print(f"verify: [bold]{result.status}[/]" + (f" ({result.reason})" if result.reason else "")
                      + (f"; written: {where}" if where else ""))
    return max(code, EXIT[result.status])
