"""`harness check DIR`: the static stage (CPU, seconds); no code of the submission is executed."""

from __future__ import annotations

import argparse

from harness import pipeline, rules
from harness.cli.arguments import add_policy_argument
from harness.cli.output import add_output_arguments, emit_verdict


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "check", help="static checks of a submission folder (files, schema, bytes, logs, claims, compliance)",
        description="Check a submission folder without running any of its code.",
    )
    parser.add_argument("folder", help="submission folder (holding submission.json, train_gpt.py, logs, README.md)")
    parser.add_argument("--against", metavar="REF_DIR",
                        help=f"reference submission folder: test whether this one beats it by "
                             f"{rules.RECORD_MARGIN_NATS} nats at p < {rules.SIGNIFICANCE_P} (R5.1)")
    add_policy_argument(parser)
    add_output_arguments(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    return emit_verdict(pipeline.check(args.folder, args.against, args.policy), args)
