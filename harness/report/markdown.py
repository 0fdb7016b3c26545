"""The Markdown form: a pull-request comment. One line with the verdict's word (no emoji), the headline
numbers, a table of the problems, the per-seed table, then evidence, every finding and the measurements
in <details> blocks; cut to fit GitHub's comment limit, in that order of importance, with a note saying
what was left out."""

from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass, field

from harness.findings import Finding, Verdict
from harness.report import summary

MARKDOWN_LIMIT = 65_536  # GitHub's limit on a comment's body, in characters
CELL_CHARS = 1_000  # the most one table cell keeps
BLOCK_CHARS = 4_000  # the most one full text in the evidence keeps
NOTE_RESERVE = 600  # room kept for the truncation note
KEPT_IN = "verdict.json (--json)"  # where everything is, uncut


@dataclass
class Section:
    title: str  # what it holds, for the truncation note
    opening: list[str]
    rows: list[str]
    closing: list[str] = field(default_factory=list)
    atomic: bool = False  # all or nothing (a JSON block cut in the middle would not parse)

    def text(self, rows: list[str] | None = None) -> str:
        return "\n".join(self.opening + (self.rows if rows is None else rows) + self.closing)


def to_markdown(verdict: Verdict, limit: int = MARKDOWN_LIMIT) -> str:
    head = _head(verdict)
    sections = [_problem_table(verdict), _run_table(verdict), _evidence(verdict), _all_findings(verdict),
                _measurements(verdict)]
    return _fit(head, [s for s in sections if s.rows], limit)


def _fit(head: str, sections: list[Section], limit: int) -> str:
    budget = limit - len(head) - NOTE_RESERVE
    parts, left_out = [], []
    for section in sections:
        full = section.text()
        if len(full) + 2 <= budget:
            parts.append(full)
            budget -= len(full) + 2
            continue
        kept, used = [], len(section.text([])) + 2
        if not section.atomic:
            for row in section.rows:
                if used + len(row) + 1 > budget:
                    break
                kept.append(row)
                used += len(row) + 1
        if kept:
            parts.append(section.text(kept))
            budget -= used
        left_out.append(f"{len(section.rows) - len(kept)} of {len(section.rows)} rows of {section.title}"
                        if kept else section.title)
    if left_out:
        note = (f"**Truncated** to fit GitHub's {MARKDOWN_LIMIT:,}-character comment limit; left out: "
                f"{'; '.join(left_out)}. Everything is in {KEPT_IN}.")
        head += "\n" + note[:NOTE_RESERVE - 4] + "\n"
    text = "\n\n".join([head.rstrip("\n")] + parts) + "\n"
    assert len(text) <= limit, f"Markdown of {len(text)} characters over the limit {limit}"
    return text


def _head(verdict: Verdict) -> str:
    lines = [f"### pgolf-harness {verdict.stage}: `{summary.name_of(verdict)}`: {summary.display_word(verdict)}",
             "",
             f"{summary.counts_text(verdict)} (harness {verdict.harness_version}, rules {verdict.rules_version})"]
    rows = summary.headline(verdict, summary.shortener("the evidence below"))
    if rows:
        lines += ["", "| | |", "| --- | --- |"] + [f"| {label} | {_cell(text)} |" for label, text in rows]
    return "\n".join(lines) + "\n"


def _problem_table(verdict: Verdict) -> Section:
    shorten = summary.shortener("the evidence below")
    rows = [f"| {_status(item)} | `{item.check}` | {_cell(summary.message_of(item, shorten))} |"
            for item in summary.problems(verdict)]
    return Section("the problems table", [f"#### Problems ({len(rows)})", "", "| status | check | message |",
                                          "| --- | --- | --- |"], rows)


def _run_table(verdict: Verdict) -> Section:
    headers, cells = summary.run_table(verdict)
    title = "Seeds (reproduced)" if summary.reproduced_runs(verdict) else "Logs in the folder"
    rows = ["| " + " | ".join(_cell(c) for c in row) + " |" for row in cells]
    return Section("the per-seed table", [f"#### {title}", "", "| " + " | ".join(headers) + " |",
                                          "|" + " --- |" * len(headers)], rows)


def _evidence(verdict: Verdict) -> Section:
    """Each problem's evidence; a long text (a traceback) in full in a code block below its line."""
    shorten = summary.shortener("below")
    rows = []
    for item in summary.problems(verdict):
        lines = summary.evidence_lines(item, shorten)
        row = f"- {_status(item)} `{item.check}`: " + (_inline("; ".join(lines)) if lines else "(no evidence)")
        for text in _long_texts(item):
            fence = _fence(text)
            row += f"\n\n  {fence}text\n" + "\n".join("  " + line for line in _capped(text, BLOCK_CHARS).split("\n"))
            row += f"\n  {fence}\n"
        rows.append(row)
    return Section("the evidence", ["<details><summary>Evidence of the problems</summary>", ""], rows,
                   ["", "</details>"])


def _all_findings(verdict: Verdict) -> Section:
    shorten = summary.shortener(KEPT_IN)
    rows = [f"| {_status(item)} | `{item.check}` | {_cell(summary.message_of(item, shorten))} | "
            f"{_cell('; '.join(summary.evidence_lines(item, shorten)))} |" for item in verdict.findings]
    return Section("the table of all findings",
                   [f"<details><summary>All {len(rows)} findings</summary>", "", "| status | check | message | evidence |",
                    "| --- | --- | --- | --- |"], rows, ["", "</details>"])


def _measurements(verdict: Verdict) -> Section:
    if not verdict.measurements:
        return Section("the measurements", [], [])
    body = json.dumps(verdict.measurements, indent=2, default=str)
    fence = _fence(body)
    return Section("the measurements", ["<details><summary>Measurements</summary>", "", fence + "json"],
                   body.split("\n"), [fence, "</details>"], atomic=True)


def _long_texts(item: Finding) -> list[str]:
    texts = [summary.clean(item.message)] + [summary.clean(value) for ev in item.evidence
                                             for value in list(ev.values.values()) + [ev.excerpt or ""]
                                             if isinstance(value, str)]
    return [text for text in texts if summary.is_long(text)]


def _fence(text: str) -> str:
    """A code fence longer than any run of backticks in text, so that the text cannot close it."""
    return "`" * max(3, max((len(run) for run in re.findall(r"`+", text)), default=0) + 1)


def _status(item: Finding) -> str:
    return f"**{item.status}**" if item.status != "pass" else item.status


def _capped(text: str, most: int) -> str:
    return text if len(text) <= most else f"{text[:most]} [{len(text) - most:,} more characters in {KEPT_IN}]"


def _inline(text: str) -> str:
    return html.escape(_capped(text, CELL_CHARS), quote=False).replace("\n", " ")


def _cell(text: str) -> str:
    return _inline(text).replace("|", "\\|")
