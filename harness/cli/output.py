"""Emit a verdict the way the user asked: rich table (plain when not a terminal), --json, --markdown."""

from __future__ import annotations

import argparse
from pathlib import Path

from harness.errors import UserError
from harness.findings import FAIL, Verdict
from harness.report import print_console, to_markdown, write_json


def add_output_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print the verdict as JSON (schemas/verdict.schema.json)")
    parser.add_argument("--markdown", metavar="FILE", help="also write the verdict as Markdown (a PR comment) to FILE")


def emit_verdict(verdict: Verdict, args: argparse.Namespace) -> int:
    """Print or write the verdict; return the exit code (1 when a check failed)."""
    if args.json:
        write_json(verdict)
    else:
        print_console(verdict)
    if args.markdown:
        try:
            Path(args.markdown).write_text(to_markdown(verdict), encoding="utf-8")
        except OSError as error:
            raise UserError(f"cannot write the Markdown report ({error.strerror})", args.markdown) from None
    return 1 if verdict.outcome == FAIL else 0
