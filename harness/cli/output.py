"""Emit a verdict the way the user asked: the console (problems only, --all for every finding; plain
off a terminal), --json, and the files --markdown FILE and --html FILE, all from the one Verdict."""

from __future__ import annotations

import argparse
from pathlib import Path

from harness.errors import UserError
from harness.findings import FAIL, Verdict
from harness.report import MARKDOWN_LIMIT, print_console, to_html, to_markdown, write_json


def add_output_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print the verdict as JSON (harness/schemas/verdict.schema.json)")
    parser.add_argument("--markdown", metavar="FILE", help="also write the verdict as Markdown (a PR comment) to FILE")
    parser.add_argument("--html", metavar="FILE", help="also write the verdict as one self-contained HTML page with plots")
    parser.add_argument("--all", action="store_true", help="print every finding, not only the problems")


def exit_code(verdict: Verdict) -> int:
    """1 when a check failed or a stage could not produce its result (incomplete), else 0."""
    return 1 if verdict.outcome == FAIL or verdict.measurements.get("incomplete_because") else 0


def emit_verdict(verdict: Verdict, args: argparse.Namespace, full_text: Path | None = None) -> int:
    """Write the files asked for, then print; return the exit code. full_text: a file already holding
    the verdict in full (verify's verdict.md), which the console's summarised texts point to."""
    written = write_report_files(verdict, args)
    if args.json:
        write_json(verdict)
    else:
        kept = full_text or next(iter(written), None)
        print_console(verdict, show_all=args.all, full_text=str(kept) if kept else None)
    return exit_code(verdict)


def write_report_files(verdict: Verdict, args: argparse.Namespace, markdown_suffix: str = "") -> list[Path]:
    """--markdown FILE and --html FILE (the page's reference curves: --against, when the command has it)."""
    written = []
    if args.markdown:
        text = to_markdown(verdict, MARKDOWN_LIMIT - len(markdown_suffix)) + markdown_suffix
        written.append(_write(args.markdown, text, "Markdown report"))
    if args.html:
        written.append(_write(args.html, to_html(verdict, getattr(args, "against", None)), "HTML report"))
    return written


def _write(path: str, text: str, what: str) -> Path:
    try:
        Path(path).write_text(text, encoding="utf-8")
    except OSError as error:
        raise UserError(f"cannot write the {what} ({error.strerror})", path) from None
    return Path(path)
