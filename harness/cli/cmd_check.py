"""`harness check DIR`: the static stage (CPU, seconds); no code of the submission is executed."""

from __future__ import annotations

import argparse

from harness import rules
from harness.claims import check_claims, claim_measurements
from harness.cli.output import add_output_arguments, emit_verdict
from harness.compliance import scan_submission
from harness.findings import Verdict
from harness.folder_checks import check_folder
from harness.logs import parse_submission_logs
from harness.scores import sample_of
from harness.stats import significance_findings
from harness.submission import load_submission


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "check", help="static checks of a submission folder (files, schema, bytes, logs, claims, compliance)",
        description="Check a submission folder without running any of its code.",
    )
    parser.add_argument("folder", help="submission folder (holding submission.json, train_gpt.py, logs, README.md)")
    parser.add_argument("--against", metavar="REF_DIR",
                        help=f"reference submission folder: test whether this one beats it by "
                             f"{rules.RECORD_MARGIN_NATS} nats at p < {rules.SIGNIFICANCE_P} (R5.1)")
    add_output_arguments(parser)
    parser.set_defaults(handler=run)


def check(folder: str, against: str | None = None) -> Verdict:
    submission = load_submission(folder)
    verdict = Verdict(submission=str(submission.path), stage="check")
    verdict.extend(check_folder(submission))
    verdict.measurements.update(submission.measurements())
    compliance = scan_submission(submission)
    verdict.extend(compliance.findings())
    verdict.measurements["compliance_verdict"] = compliance.verdict
    run_logs = parse_submission_logs(submission)
    verdict.extend(check_claims(submission, run_logs))
    verdict.measurements.update(claim_measurements(submission, run_logs))
    if against is not None:
        reference = load_submission(against)
        findings, numbers = significance_findings(
            sample_of(submission.path.name, submission.metadata, run_logs),
            sample_of(reference.path.name, reference.metadata, parse_submission_logs(reference)))
        verdict.extend(findings)
        verdict.measurements.update(numbers)
    return verdict


def run(args: argparse.Namespace) -> int:
    return emit_verdict(check(args.folder, args.against), args)
