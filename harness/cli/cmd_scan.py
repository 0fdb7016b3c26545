"""`harness scan FILE|DIR`: the static compliance scan alone (rules in harness/compliance/rules.json).

Prints one row per rule (or per hit) and the compliance verdict: clean, clean_with_legal_ttt,
needs_review or flag. `--json` prints an object whose top-level `verdict` is that word, with the
findings beside it (harness/schemas/compliance_scan.schema.json).

Exit codes: 0 for clean and clean_with_legal_ttt, and for needs_review (a review is a warning, as
everywhere in the harness: the scan could not decide, it did not find a breach); 1 for flag, for
needs_review under --fail-on-review (for gates that want a person to look first), and when nothing
could be scanned (no Python code that runs, or none that parses: a scan of nothing is no pass); 2 for
a path that is not there or not Python.
"""

from __future__ import annotations

import argparse
import json
import sys

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from harness.cli.output import add_output_arguments, write_report_files
from harness.compliance import (CLEAN, CLEAN_WITH_LEGAL_TTT, FLAGGED, NEEDS_REVIEW, ScanReport, load_ruleset, scan_path,
                                scanned_nothing)
from harness.errors import UserError
from harness.findings import Verdict
from harness.report import print_console
from harness.schemas import validation_errors

VERDICT_STYLE = {CLEAN: "green", CLEAN_WITH_LEGAL_TTT: "green", NEEDS_REVIEW: "yellow", FLAGGED: "bold red"}


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "scan", help="static compliance scan of a submission's code (TTT order, caches, data use, network, hidden code)",
        description="Scan a submission folder or one Python file for evaluation-legality problems, without running it.",
    )
    parser.add_argument("path", nargs="?", help="submission folder (train_gpt.py and what it runs) or a single .py file")
    add_output_arguments(parser)
    parser.add_argument("--fail-on-review", action="store_true", help="exit 1 for needs_review as well as for flag")
    parser.add_argument("--rules", action="store_true", help="list the rules the scan applies, with their sources, and exit")
    parser.set_defaults(handler=run)


def print_rules(console: Console) -> None:
    ruleset = load_ruleset()
    table = Table(title=f"compliance rules ({ruleset.name} {ruleset.version})")
    table.add_column("check", no_wrap=True)
    table.add_column("severity", no_wrap=True)
    table.add_column("title")
    table.add_column("source")
    for rule in ruleset.rules:
        table.add_row(f"compliance.{rule.id}", rule.severity, rule.title, rule.source())
    console.print(table)


def scan_verdict(report: ScanReport) -> Verdict:
    """The scan as a harness Verdict (stage "scan"), for the console table and Markdown."""
    verdict = Verdict(submission=report.path, stage="scan")
    verdict.extend(report.findings())
    verdict.measurements.update({"compliance_verdict": report.verdict, "compliance_reasons": report.reasons,
                                 "env_vars": report.env_vars, "scan_seconds": round(report.elapsed_s, 3)})
    return verdict


def scan_json(report: ScanReport) -> dict:
    data = report.to_dict()
    errors = validation_errors(data, "compliance_scan")
    if errors:  # our own output breaking our own schema is a bug, not a user error
        raise AssertionError("scan does not match harness/schemas/compliance_scan.schema.json: " + "; ".join(errors))
    return data


def run(args: argparse.Namespace) -> int:
    if args.rules:
        print_rules(Console())
        return 0
    if args.path is None:
        raise UserError("give a submission folder or a .py file to scan (or --rules to list the rules)")
    report = scan_path(args.path)
    verdict = scan_verdict(report)
    written = write_report_files(verdict, args, markdown_suffix=f"\n**compliance verdict: {report.verdict}**\n")
    if args.json:
        json.dump(scan_json(report), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        console = Console(highlight=False)
        print_console(verdict, console, show_all=args.all, full_text=str(written[0]) if written else None)
        style = VERDICT_STYLE[report.verdict]
        console.print(f"compliance verdict: [{style}]{report.verdict}[/]", highlight=False)
        for reason in report.reasons:
            console.print(Text(f"  - {reason}"))  # wrapped to the terminal; a reason is not markup
    if scanned_nothing(verdict.findings):
        Console(stderr=True).print(f"[bold red]scan: nothing in {escape(args.path)} could be scanned[/] (no Python "
                                   "code that runs, or none that parses): not a pass.", highlight=False, soft_wrap=True)
        return 1
    if report.verdict == FLAGGED or (report.verdict == NEEDS_REVIEW and args.fail_on_review):
        return 1
    return 0
