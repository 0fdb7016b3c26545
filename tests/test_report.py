"""Verdicts render as schema-valid JSON, a console table and Markdown; outcomes follow the statuses."""

from __future__ import annotations

import io
import json

import pytest
from rich.console import Console

from harness.findings import FAIL, PASS, SKIP, WARN, Finding, Verdict, finding
from harness.report import print_console, to_markdown, verdict_json, write_json
from harness.schemas import validation_errors


# Real ids from harness/checks.py (a finding refuses any other), one per position in make_verdict.
IDS = ("claims.val_bpb", "claims.val_loss", "claims.bytes_code")


def make_verdict(*statuses: str) -> Verdict:
    verdict = Verdict(submission="records/x", stage="check")
    for index, status in enumerate(statuses):
        verdict.findings.append(finding(IDS[index], status, f"finding {index}", file="train.log", line=index + 1, bpb=1.2))
    return verdict


@pytest.mark.parametrize(
    "statuses, outcome",
    [((PASS, PASS), PASS), ((PASS, WARN), WARN), ((PASS, WARN, FAIL), FAIL), ((SKIP, SKIP), SKIP), ((), SKIP), ((PASS, SKIP), PASS)],
)
def test_outcome(statuses, outcome):
    assert make_verdict(*statuses).outcome == outcome


def test_unknown_status_is_a_bug():
    with pytest.raises(ValueError):
        Finding(check="files.required", status="ok", message="m")


def test_json_is_schema_valid_and_drops_empty_evidence_fields():
    verdict = make_verdict(PASS, FAIL)
    verdict.findings.append(finding("logs.parse", SKIP, "could not run: no log"))
    data = verdict_json(verdict)
    assert validation_errors(data, "verdict") == []
    assert data["outcome"] == FAIL and data["counts"] == {"pass": 1, "fail": 1, "warn": 0, "skip": 1}
    assert data["findings"][0]["evidence"] == [{"file": "train.log", "line": 1, "values": {"bpb": 1.2}}]
    assert data["findings"][2]["evidence"] == []
    stream = io.StringIO()
    write_json(verdict, stream)
    assert json.loads(stream.getvalue())["submission"] == "records/x"


def test_schema_rejects_a_bad_verdict():
    data = verdict_json(make_verdict(PASS))
    data["findings"][0]["status"] = "ok"
    errors = validation_errors(data, "verdict")
    assert errors and errors[0].startswith("$.findings[0].status:")


def test_markdown_lists_failures_first_and_escapes_pipes():
    verdict = make_verdict(PASS, FAIL)
    verdict.findings[0].message = "a | b"
    text = to_markdown(verdict)
    rows = [line for line in text.splitlines() if line.startswith("| ") and "`claims." in line]
    assert rows[0].startswith("| ❌ fail | `claims.val_loss`")
    assert "a \\| b" in rows[1]
    assert "**FAIL**" in text.splitlines()[0]


def test_console_table_shows_every_finding():
    console = Console(file=io.StringIO(), width=200, color_system=None)
    print_console(make_verdict(PASS, WARN), console)
    out = console.file.getvalue()
    assert "claims.val_bpb" in out and "claims.val_loss" in out and "train.log:2 (bpb=1.2)" in out
    assert "WARN: 1 passed, 0 failed, 1 warned, 0 skipped" in out
