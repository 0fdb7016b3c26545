"""The console form: a summary line and the headline numbers first, then the problems only (failures,
warnings, skips with their reasons), or with `show_all` every finding. Lines are wrapped to the
console's width (80 columns included) with a hanging indent and never cut; long untrusted text is one
line pointing at where the full text is kept. Plain text off a terminal (rich drops the colours)."""

from __future__ import annotations

from rich.console import Console
from rich.text import Text

from harness.findings import FAIL, PASS, SKIP, WARN, Finding, Verdict
from harness.report import summary

STATUS_STYLE = {PASS: "green", FAIL: "bold red", WARN: "yellow", SKIP: "dim"}
LABEL_WIDTH = 15  # the headline's labels ("significance" is the longest), then a space or more
STATUS_WIDTH = 6  # "fail  " before a finding's id
EVIDENCE_INDENT = STATUS_WIDTH + 2


def print_console(verdict: Verdict, console: Console | None = None, *, show_all: bool = False,
                  full_text: str | None = None) -> None:
    """full_text: the file that keeps every text in full (verify's verdict.md, a --markdown or --html
    file); long texts are summarised and point there (or at --all). With show_all nothing is summarised."""
    console = console or Console(highlight=False)
    width = max(console.width, 40)
    line = Text(summary.display_word(verdict), style=STATUS_STYLE[summary.severity(verdict)])
    line.append(f": {summary.counts_text(verdict)}")
    _print_wrapped(console, line, width, 2)
    shorten = summary.keep if show_all else summary.shortener(full_text)
    for label, text in summary.headline(verdict, shorten):
        row = Text(f"  {label:<{LABEL_WIDTH - 2}}{text}")
        row.stylize("bold", 2, 2 + len(label))
        _print_wrapped(console, row, width, LABEL_WIDTH)
    shown = verdict.findings if show_all else summary.problems(verdict)
    console.print()
    console.print(Text(_heading(verdict, shown, show_all), style="bold"))
    for ids, item in [(item.check, item) for item in shown] if show_all else _grouped(shown):
        _print_finding(console, ids, item, shorten, show_all, width)


def _heading(verdict: Verdict, shown: list[Finding], show_all: bool) -> str:
    total = len(verdict.findings)
    if show_all:
        return f"all {summary.plural(total, 'finding')}, in the order they were made"
    if not shown:
        return f"no problems: all {total} findings passed"
    return f"problems: {len(shown)} of {summary.plural(total, 'finding')} (--all prints every finding)"


def _grouped(problems: list[Finding]) -> list[tuple[str, Finding]]:
    """Skips that give the same reason as one entry naming all their checks (e.g. every compliance rule
    skipped because no code was found); failures and warnings one entry each."""
    entries: list[tuple[str, Finding]] = []
    skips: dict[str, int] = {}
    for item in problems:
        index = skips.get(item.message) if item.status == SKIP else None
        if index is None:
            if item.status == SKIP:
                skips[item.message] = len(entries)
            entries.append((item.check, item))
        elif item.check not in entries[index][0].split(", "):
            entries[index] = (f"{entries[index][0]}, {item.check}", entries[index][1])
    return entries


def _print_finding(console: Console, ids: str, item: Finding, shorten: summary.Shorten, show_all: bool,
                   width: int) -> None:
    """The status, the id(s) and the message, wrapped under them; then each piece of evidence (for
    failures and warnings, or everything under --all) on its own lines, indented further."""
    head = Text(f"{item.status:<{STATUS_WIDTH}}{ids}{':' if ', ' in ids else ''} {summary.message_of(item, shorten)}")
    head.stylize(STATUS_STYLE[item.status], 0, len(item.status))
    head.stylize("bold", STATUS_WIDTH, STATUS_WIDTH + len(ids))
    _print_wrapped(console, head, width, STATUS_WIDTH)
    if show_all or item.status in (FAIL, WARN):
        for line in summary.evidence_lines(item, shorten):
            _print_wrapped(console, Text(" " * EVIDENCE_INDENT + line, style="dim" if item.status == PASS else ""),
                           width, EVIDENCE_INDENT + 2)


def _print_wrapped(console: Console, text: Text, width: int, indent: int) -> None:
    """Print text wrapped at width, its continuation lines after `indent` spaces."""
    for number, (start, end) in enumerate(wrap_spans(text.plain, width, indent)):
        console.print((Text(" " * indent) if number else Text()) + text[start:end], soft_wrap=True)


def wrap_spans(plain: str, width: int, indent: int) -> list[tuple[int, int]]:
    """Where to break plain into lines of at most width characters, those after the first printed after
    `indent` spaces: (start, end) of each piece. Breaks fall on spaces (dropped) or newlines; a word
    longer than a line is broken inside. Every other character is kept."""
    spans, start, room = [], 0, width
    while start < len(plain):
        newline = plain.find("\n", start, start + room + 1)
        if newline != -1:
            end, resume = newline, newline + 1
        elif len(plain) - start <= room:
            end, resume = len(plain), len(plain)
        else:
            space = plain.rfind(" ", start + 1, start + room + 1)
            end, resume = (space, space + 1) if space != -1 else (start + room, start + room)
        spans.append((start, end))
        start, room = resume, width - indent
        if newline == -1:
            while start < len(plain) and plain[start] == " ":
                start += 1
    return spans
