"""`harness probe DIR`: the black-box legality probe (harness/probe/, pipeline.probe).

Trains the folder's script briefly, with its validation split replaced by a stream drawn from a known
distribution D, and tests every final evaluation it prints, and the trusted evaluator's score of its
model, against D's entropy bound. Prints the findings and a table of the modes; `--json` prints the
verdict, whose measurements hold `probe_verdict` (pass, flag or skip), `probe_reason` and `probe_modes`
(one entry per evaluation line with its numbers). Exit 0 pass, 1 flag or skip (a probe that could not
run is never a pass), 2 usage error or unreadable input.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console
from rich.table import Table

from harness import pipeline, rules
from harness.cli.arguments import add_data_arguments, parse_env
from harness.cli.output import add_output_arguments, emit_verdict
from harness.errors import UserError
from harness.probe.judge import FLAGGED, PASSED, SKIPPED
from harness.probe.split import DEFAULT_PROBE_TOKENS
from harness.probe.streams import STREAMS, UNIGRAM
from harness.reproduce.runner import DEFAULT_TIMEOUT_S

EXIT = {PASSED: 0, FLAGGED: 1, SKIPPED: 1}
WORD_STYLE = {PASSED: "green", FLAGGED: "bold red", SKIPPED: "yellow"}


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "probe", help="black-box legality probe: the script's evaluation on a stream of known entropy",
        description="Run the folder's train_gpt.py, training cut short (ITERATIONS, MAX_WALLCLOCK_SECONDS), with "
                    "its validation split replaced by a stream drawn from a known distribution D, and test every "
                    "final evaluation line and the trusted evaluator's score against D's entropy bound.",
    )
    parser.add_argument("folder", help="submission folder holding train_gpt.py")
    add_data_arguments(parser, "dataset whose training shards the script trains on and D is fitted to")
    parser.add_argument("--stream", choices=STREAMS, default=UNIGRAM,
                        help="D: the training shards' unigram (default), a Markov chain fitted to them (sharper only "
                             "for a model that has learnt the bigrams), or uniform tokens (the most conservative)")
    parser.add_argument("--tokens", type=int, default=DEFAULT_PROBE_TOKENS, metavar="N",
                        help=f"length of the probe stream (default {DEFAULT_PROBE_TOKENS:,})")
    parser.add_argument("--probe-seed", type=int, metavar="N", help="seed of the stream (default: a fresh one, "
                        "recorded in probe_manifest.json)")
    parser.add_argument("--env", metavar="KEY=VALUE", action="append", default=[],
                        help="environment variable for the script (repeatable), e.g. --env ITERATIONS=50")
    parser.add_argument("--out", metavar="DIR", help="where the probe's data, run and manifest go "
                        "(default runs/probe/<folder>)")
    parser.add_argument("--device", choices=("cpu", "cuda"), help="self-check device (default: cuda when available)")
    parser.add_argument("--timeout", metavar="S", type=float, default=DEFAULT_TIMEOUT_S,
                        help=f"wall-clock limit of the run in seconds (default {DEFAULT_TIMEOUT_S:g})")
    parser.add_argument("--allow-network", action="store_true",
                        help="run the script even where no network namespace can isolate it")
    add_output_arguments(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    folder = Path(args.folder)
    if not folder.is_dir():
        raise UserError("no such submission folder", args.folder)
    if not (folder / rules.COUNTED_CODE_FILE).is_file():
        raise UserError(f"holds no {rules.COUNTED_CODE_FILE} to probe", args.folder)
    if args.probe_seed is not None and args.probe_seed < 0:
        raise UserError(f"--probe-seed must be a non-negative integer, got {args.probe_seed}")
    if not args.timeout > 0:
        raise UserError(f"--timeout must be a positive number of seconds, got {args.timeout:g}")
    out_dir = Path(args.out) if args.out else Path("runs") / "probe" / folder.resolve().name
    if out_dir.resolve().is_relative_to(folder.resolve()):
        raise UserError("is inside the submission folder, which the run copies; choose another --out", out_dir)
    status = Console(stderr=True, highlight=False)

    def stage(name: str, message: str) -> None:
        status.print(f"[bold]{name}[/]: {message}")

    verdict = pipeline.probe(folder, args.data, args.stream, args.tokens, parse_env(args.env), out_dir,
                             tokenizer=args.tokenizer, seed=args.probe_seed, device=args.device,
                             timeout_s=args.timeout, allow_network=args.allow_network, stage=stage)
    emit_verdict(verdict, args)
    word, reason = verdict.measurements["probe_verdict"], verdict.measurements.get("probe_reason")
    if not args.json:
        console = Console(highlight=False)
        if verdict.measurements.get("probe_modes"):
            console.print(modes_table(verdict.measurements))
        console.print(f"probe: [{WORD_STYLE[word]}]{word}[/]" + (f" ({reason})" if reason else ""), soft_wrap=True)
    return EXIT[word]


def modes_table(measurements: dict) -> Table:
    """One row per evaluation the script printed, and the trusted self-check, with the bound's numbers
    (the JSON has them in full, with each loss's distance from H(D))."""
    entropy = measurements["probe"]["entropy_rate"]
    table = Table(title=f"probe: {measurements['probe']['stream']} stream, H(D) = {entropy:.6f} nats/token")
    for column in ("evaluation", "val_loss", "floor", "margin", "p", "probe"):
        table.add_column(column, no_wrap=column != "evaluation", justify="left" if column == "evaluation" else "right")
    rows = dict(measurements["probe_modes"])
    if measurements.get("probe_self_check", {}).get("status") in (PASSED, FLAGGED):
        rows["trusted evaluator (self-check)"] = measurements["probe_self_check"]
    for mode, numbers in rows.items():
        style = WORD_STYLE[numbers["status"]]
        table.add_row(mode, f"{numbers['val_loss']:.4f}", f"{numbers['floor']:.4f}", f"{numbers['margin']:+.4f}",
                      f"{numbers['p_value']:.1g}", f"[{style}]{numbers['status']}[/]")
    return table
