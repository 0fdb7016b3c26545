"""Verdicts render as schema-valid JSON, a compact console (problems first, 80 columns, nothing cut) and
Markdown for pull requests within GitHub's limit; outcomes and exit codes follow the statuses."""

from __future__ import annotations

import io
import json

import pytest
from rich.console import Console

from harness.cli import main
from harness.cli.output import exit_code
from harness.errors import UserError
from harness.findings import FAIL, PASS, SKIP, WARN, Finding, Verdict, finding
from harness.report import MARKDOWN_LIMIT, load_verdict, print_console, to_markdown, verdict_json, write_json
from harness.report.console import wrap_spans
from harness.schemas import validation_errors
from report_verdicts import TINY_RECORD, check_verdict, verify_verdict


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
    assert text.splitlines()[0] == "### pgolf-harness check: `x`: FAIL"
    problem_rows = [line for line in text.splitlines() if line.startswith("| **")]
    assert problem_rows == ["| **fail** | `claims.val_loss` | finding 1 |",  # the problems table
                            "| **fail** | `claims.val_loss` | finding 1 | train.log:2 (bpb=1.2) |"]  # all findings
    everything = [line for line in text.splitlines() if line.startswith("| ") and "`claims." in line][1:]
    assert everything[0].startswith("| pass | `claims.val_bpb` | a \\| b |")


# ---- the console -----------------------------------------------------------------------------------

def render(verdict: Verdict, width: int = 80, **options) -> str:
    console = Console(file=io.StringIO(), width=width, color_system=None)
    print_console(verdict, console, **options)
    return console.file.getvalue()


@pytest.fixture(scope="module")
def tiny_check() -> Verdict:
    return check_verdict()


def test_console_at_80_columns_shows_the_summary_then_problems_only(tiny_check):
    out = render(tiny_check)
    lines = out.splitlines()
    counts = tiny_check.counts()
    assert lines[0] == (f"WARN: {counts[PASS]} passed, {counts[FAIL]} failed, {counts[WARN]} warned, "
                        f"{counts[SKIP]} skipped")
    assert lines[1].split() == ["check", str(TINY_RECORD)]
    assert lines[2].split()[:3] == ["val_bpb", "claimed", "2.927460,"]
    assert "272,930 claimed" in out and "cap 16,000,000" in out
    assert max(len(line) for line in lines) <= 80 and "…" not in out
    problems = [f for f in tiny_check.findings if f.status != PASS]
    assert f"problems: {len(problems)} of {len(tiny_check.findings)} findings" in out
    status_lines = [line.split()[:2] for line in lines if line[:4] in ("fail", "warn", "skip", "pass")]
    assert status_lines[0] == ["warn", "data.val_tokens"]  # warnings before skips
    assert {word for word, _ in status_lines} == {"warn", "skip"}
    assert "files.required" not in out and "code.syntax" not in out  # passes are left out
    assert "train_seed42.log:852 (val_tokens=140288, dataset=example_sp1024)" in out  # a warning's evidence
    assert len(lines) < 40


def test_console_all_shows_every_finding_with_its_evidence(tiny_check):
    out = render(tiny_check, show_all=True)
    assert f"all {len(tiny_check.findings)} findings" in out
    flat = " ".join(out.split())
    for item in tiny_check.findings:
        assert f"{item.status} {item.check}" in flat
        for ev in item.evidence:
            assert ev.location() in flat
    assert max(len(line) for line in out.splitlines()) <= 80 and "…" not in out


def test_long_untrusted_text_is_one_line_pointing_at_the_full_text():
    verdict = verify_verdict()
    out = render(verdict, full_text="/runs/x/verdict.md")
    (line,) = [line for line in out.splitlines() if line.startswith("skip  eval.rescore")]
    entry = " ".join(out[out.index(line):].split("\n\n")[0].split())
    assert entry.startswith("skip eval.rescore no independent re-evaluation: UnpicklingError: Weights only load "
                            "failed.")
    assert entry.endswith("[summarised from 3 lines, 544 characters; full text: /runs/x/verdict.md]")
    assert "(1) In PyTorch" not in out and "\x1b" not in out and "[1m" not in out
    full = render(verdict, show_all=True)
    assert "(1) In PyTorch 2.6" in full and "(2) Alternatively" in full and "\x1b" not in full
    assert "log_tail=WeightsUnpickler error" in " ".join(full.split())
    assert max(len(line) for line in full.splitlines()) <= 80


def test_console_prints_markup_in_untrusted_text_as_it_is():
    verdict = make_verdict(FAIL)
    verdict.findings[0].message = "[bold red]not markup[/] \x1b[31mred\x1b[0m \x07bell"
    out = render(verdict)
    assert "fail  claims.val_bpb [bold red]not markup[/] red bell" in out


@pytest.mark.parametrize("width", [40, 80, 120])
def test_wrapping_keeps_every_character_and_the_width(width):
    text = "x" * 150 + " a few words " + "y" * 30 + "\nsecond line " + " ".join(["word"] * 40)
    spans = wrap_spans(text, width, indent=6)
    pieces = [text[a:b] for a, b in spans]
    assert len(pieces[0]) <= width and all(len(p) + 6 <= width for p in pieces[1:])
    assert "".join(pieces).replace(" ", "") == text.replace(" ", "").replace("\n", "")


def test_exit_code_is_1_for_a_failure_or_an_incomplete_verdict():
    assert exit_code(make_verdict(PASS, WARN)) == 0
    assert exit_code(make_verdict(PASS, FAIL)) == 1
    incomplete = make_verdict(SKIP)
    incomplete.measurements["incomplete_because"] = "eval.rescore: the worker exited with status 1"
    assert exit_code(incomplete) == 1
    out = render(incomplete)
    assert out.splitlines()[0] == "INCOMPLETE: 0 passed, 0 failed, 0 warned, 1 skipped"
    assert "  why          eval.rescore: the worker exited with status 1\n" in out


def test_the_cli_prints_problems_only_unless_all(capsys):
    assert main(["check", str(TINY_RECORD)]) == 0
    short = capsys.readouterr().out
    assert main(["check", str(TINY_RECORD), "--all"]) == 0
    full = capsys.readouterr().out
    assert "files.required" not in short and "files.required" in full
    assert short.splitlines()[0] == full.splitlines()[0]


# ---- Markdown --------------------------------------------------------------------------------------

def test_markdown_of_a_verify_verdict():
    verdict = verify_verdict()
    text = to_markdown(verdict)
    lines = text.splitlines()
    assert lines[0] == "### pgolf-harness verify: `2026-11-24_reference_tiny`: VERIFIED WITH WARNINGS"
    assert all(ord(char) < 0x2000 for char in lines[0])  # no emoji in the verdict line
    assert "| val_bpb | claimed 2.927460, reproduced 2.927460 (mean of 3 seeds), trusted 2.927660 |" in lines
    assert "| 1337 | ok | 2.931982 | 2.931982 | 2.932182 | 272,930 | 1.6 | 1.9 |" in lines
    problems = lines.index("#### Problems (7)")
    assert lines[problems + 4].startswith("| **warn** | `data.val_tokens` |")
    assert "[summarised from 3 lines, 544 characters; full text: the evidence below]" in text
    assert "(2) Alternatively" in text.split("<summary>Evidence of the problems</summary>")[1]
    assert "\x1b" not in text
    assert text.count("<details>") == text.count("</details>") == 3
    assert len(text) < MARKDOWN_LIMIT


def test_markdown_is_cut_to_githubs_limit_with_a_note():
    verdict = make_verdict()
    for index in range(3000):
        verdict.findings.append(finding("logs.parse", FAIL if index % 2 else WARN, f"problem {index}: " + "z " * 200,
                                        file=f"log{index}.txt", line=index))
    verdict.measurements["blob"] = ["m" * 100] * 2000
    text = to_markdown(verdict)
    assert MARKDOWN_LIMIT - 2_000 < len(text) <= MARKDOWN_LIMIT
    note = next(line for line in text.splitlines() if line.startswith("**Truncated**"))
    assert "of 3000 rows of the problems table" in note and "the measurements" in note
    assert "```json" not in text  # the JSON block is whole or absent
    kept = [line for line in text.splitlines() if line.startswith("| **fail** | `logs.parse`")]
    assert kept[0].startswith("| **fail** | `logs.parse` | problem 1: z z")  # failures first
    assert to_markdown(verdict, limit=20_000).count("\n") < text.count("\n")
    assert len(to_markdown(verdict, limit=20_000)) <= 20_000


def test_a_traceback_holding_backticks_cannot_close_its_code_block():
    verdict = make_verdict(FAIL)
    verdict.findings[0].message = "Traceback (most recent call last):\n```\n</details>\nValueError: boom"
    text = to_markdown(verdict)
    evidence = text.split("<summary>Evidence of the problems</summary>")[1]
    assert "  ````text\n  Traceback (most recent call last):\n  ```\n  </details>\n  ValueError: boom\n  ````" in evidence
    assert "| **fail** | `claims.val_bpb` | ValueError: boom [summarised from 4 lines, 66 characters" in text


def test_a_huge_cell_is_capped():
    verdict = make_verdict(FAIL)
    verdict.findings[0].message = "q" * 50_000
    text = to_markdown(verdict)
    assert "more characters in verdict.json (--json)" in text and len(text) < 10_000


# ---- JSON ------------------------------------------------------------------------------------------

def test_verify_verdict_json_is_schema_valid_and_reads_back(tmp_path):
    verdict = verify_verdict()
    data = verdict_json(verdict)
    assert validation_errors(data, "verdict") == []
    path = tmp_path / "verdict.json"
    with path.open("w", encoding="utf-8") as stream:
        write_json(verdict, stream)
    again = load_verdict(path)
    assert verdict_json(again) == json.loads(path.read_text())
    assert to_markdown(again) == to_markdown(verdict)


@pytest.mark.parametrize("content, words", [
    ("{", "is not JSON"), ('{"stage": "check"}', "is not a verdict"),
])
def test_a_bad_verdict_file_is_one_user_error(tmp_path, content, words):
    path = tmp_path / "verdict.json"
    path.write_text(content)
    with pytest.raises(UserError, match=words) as error:
        load_verdict(path)
    assert str(error.value).startswith(str(path)) and "\n" not in str(error.value)
