"""Render a verdict: a rich console table, schema-valid JSON, and Markdown for pull-request comments."""

from __future__ import annotations

import json
import sys
from typing import Any, TextIO

from rich.console import Console
from rich.table import Table

from harness.findings import FAIL, PASS, SKIP, WARN, Verdict
from harness.schemas import validation_errors

STATUS_STYLE = {PASS: "green", FAIL: "bold red", WARN: "yellow", SKIP: "dim"}
STATUS_MARK = {PASS: "✅ pass", FAIL: "❌ fail", WARN: "⚠️ warn", SKIP: "⏭️ skip"}


def verdict_json(verdict: Verdict) -> dict[str, Any]:
    """The verdict as a JSON-ready dict, validated against schemas/verdict.schema.json."""
    data = verdict.to_dict()
    errors = validation_errors(data, "verdict")
    if errors:  # our own output breaking our own schema is a bug, not a user error
        raise AssertionError("verdict does not match schemas/verdict.schema.json: " + "; ".join(errors))
    return data


def write_json(verdict: Verdict, stream: TextIO | None = None) -> None:
    stream = stream or sys.stdout  # looked up at call time, so redirected or captured stdout is honoured
    json.dump(verdict_json(verdict), stream, indent=2, sort_keys=False, default=str)
    stream.write("\n")


def _evidence_text(finding) -> str:
    parts = []
    for ev in finding.evidence:
        text = ev.location()
        if ev.values:
            values = ", ".join(f"{k}={v}" for k, v in ev.values.items())
            text = f"{text} ({values})" if text else values
        if text:
            parts.append(text)
    return "; ".join(parts)


def print_console(verdict: Verdict, console: Console | None = None) -> None:
    console = console or Console()
    table = Table(title=f"{verdict.stage}: {verdict.submission}", show_lines=False, expand=False)
    table.add_column("status", no_wrap=True)
    table.add_column("check", no_wrap=True)
    table.add_column("message")
    table.add_column("evidence", overflow="fold")
    for item in verdict.findings:
        style = STATUS_STYLE[item.status]
        table.add_row(f"[{style}]{item.status}[/]", item.check, item.message, _evidence_text(item))
    console.print(table)
    counts = verdict.counts()
    style = STATUS_STYLE[verdict.outcome]
    console.print(
        f"[{style}]{verdict.outcome.upper()}[/]: {counts[PASS]} passed, {counts[FAIL]} failed, "
        f"{counts[WARN]} warned, {counts[SKIP]} skipped"
    )


def to_markdown(verdict: Verdict) -> str:
    """A pull-request comment: summary line, then one table row per finding (failures first)."""
    counts = verdict.counts()
    lines = [
        f"### pgolf-harness {verdict.stage}: `{verdict.submission}` — **{verdict.outcome.upper()}**",
        "",
        f"{counts[PASS]} passed, {counts[FAIL]} failed, {counts[WARN]} warned, {counts[SKIP]} skipped "
        f"(harness {verdict.harness_version}, rules {verdict.rules_version})",
        "",
        "| status | check | message | evidence |",
        "| --- | --- | --- | --- |",
    ]
    order = {FAIL: 0, WARN: 1, SKIP: 2, PASS: 3}
    for item in sorted(verdict.findings, key=lambda f: order[f.status]):
        cells = [STATUS_MARK[item.status], f"`{item.check}`", item.message, _evidence_text(item)]
        lines.append("| " + " | ".join(c.replace("|", "\\|").replace("\n", " ") for c in cells) + " |")
    if verdict.measurements:
        lines += ["", "<details><summary>measurements</summary>", "", "```json",
                  json.dumps(verdict.measurements, indent=2, default=str), "```", "</details>"]
    return "\n".join(lines) + "\n"
