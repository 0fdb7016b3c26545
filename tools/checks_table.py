"""Write the table of check ids (harness/checks.py) into the README, between its markers.

    python tools/checks_table.py [--check] [README]

Replaces the lines between `<!-- checks:start -->` and `<!-- checks:end -->` of README (default: the
repository's README.md) with `harness.checks.markdown_table()`. With --check, changes nothing and exits
1 when the block differs from the table. Exit status 2 when the README lacks the markers.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout without installing

from harness.checks import markdown_table  # noqa: E402

START, END = "<!-- checks:start -->", "<!-- checks:end -->"


def split_block(text: str) -> tuple[str, str, str] | None:
    """(before and the start marker's line, the block, the end marker's line and after), or None
    when the markers are not both there, on lines of their own, in order."""
    lines = text.splitlines(keepends=True)
    stripped = [line.strip() for line in lines]
    if START not in stripped or END not in stripped:
        return None
    start, end = stripped.index(START), stripped.index(END)
    if end < start:
        return None
    return "".join(lines[:start + 1]), "".join(lines[start + 1:end]), "".join(lines[end:])


def with_table(text: str) -> str | None:
    """`text` with the block between the markers replaced by the table; None without the markers."""
    parts = split_block(text)
    if parts is None:
        return None
    before, _, after = parts
    return before + markdown_table() + after


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("readme", nargs="?", type=Path, default=ROOT / "README.md")
    parser.add_argument("--check", action="store_true", help="exit 1 if the block differs, change nothing")
    args = parser.parse_args(argv)
    text = args.readme.read_text(encoding="utf-8")
    updated = with_table(text)
    if updated is None:
        print(f"{args.readme}: no {START} ... {END} lines to fill; add them where the table belongs", file=sys.stderr)
        return 2
    if args.check:
        if updated != text:
            print(f"{args.readme}: the check table is out of date; run python tools/checks_table.py", file=sys.stderr)
            return 1
        return 0
    if updated != text:
        args.readme.write_text(updated, encoding="utf-8")
        print(f"{args.readme}: check table rewritten")
    return 0


if __name__ == "__main__":
    sys.exit(main())
