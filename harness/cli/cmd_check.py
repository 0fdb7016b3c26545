"""`harness check DIR`: the static stage (CPU, seconds); no code of the submission is executed."""

from __future__ import annotations

import argparse

from harness.cli.output import add_output_arguments, emit_verdict
from harness.findings import Verdict
from harness.folder_checks import check_folder
from harness.submission import load_submission


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "check", help="static checks of a submission folder (files, schema, bytes, logs, claims, compliance)",
        description="Check a submission folder without running any of its code.",
    )
    parser.add_argument("folder", help="submission folder (holding submission.json, train_gpt.py, logs, README.md)")
    add_output_arguments(parser)
    parser.set_defaults(handler=run)


def check(folder: str) -> Verdict:
    submission = load_submission(folder)
    verdict = Verdict(submission=str(submission.path), stage="check")
    verdict.extend(check_folder(submission))
    verdict.measurements.update(submission.measurements())
    return verdict


def run(args: argparse.Namespace) -> int:
    return emit_verdict(check(args.folder), args)
