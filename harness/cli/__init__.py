"""The `harness` command: parses arguments and calls the stages; the only module that knows them all.

Each subcommand lives in its own module `cmd_<name>.py` with `register(subparsers)`, which adds its
parser and sets `handler(args) -> exit code`. Exit codes: 0 all checks passed (or warned), 1 a check
failed, 2 usage error or unreadable input, 130 interrupted.
"""

from __future__ import annotations

import argparse
import os
import sys

from rich.console import Console

from harness import __version__
from harness.cli import cmd_check, cmd_ci, cmd_data, cmd_eval, cmd_probe, cmd_run_seeds, cmd_scan, cmd_verify
from harness.errors import UserError

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130

SUBCOMMANDS = (cmd_check, cmd_verify, cmd_probe, cmd_run_seeds, cmd_eval, cmd_ci, cmd_data, cmd_scan)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="harness",
        description="Check and verify Parameter Golf submissions (openai/parameter-golf).",
    )
    parser.add_argument("--version", action="version", version=f"pgolf-harness {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in SUBCOMMANDS:
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        return int(args.handler(args))
    except UserError as error:
        Console(stderr=True).print(f"[bold red]error:[/] {error}", highlight=False, soft_wrap=True)
        return EXIT_USAGE
    except KeyboardInterrupt:
        Console(stderr=True).print("interrupted")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (`harness check --json DIR | head`): not an error of ours or theirs.
        # Point stdout at devnull so the interpreter's final flush does not raise again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
