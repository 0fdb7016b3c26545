"""A verdict as GitHub Actions reads it: workflow-command annotations (`::error file=…,line=…::message`) at
the files and lines of failed and warned findings, the Markdown report appended to $GITHUB_STEP_SUMMARY,
and verdict.json / verdict.md for the job that posts the comment. Rendering only.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from harness.errors import UserError
from harness.findings import FAIL, WARN, Finding, Verdict
from harness.report import to_markdown, write_json

LEVEL = {FAIL: "error", WARN: "warning"}
_DERIVED = re.compile(r"\[[^\]]*\]$")  # "train_gpt.py[decoded]": a payload decoded from that file


def in_github_actions() -> bool:
    return os.environ.get("GITHUB_ACTIONS") == "true"


def annotations(verdict: Verdict) -> list[str]:
    """One workflow command per failed or warned finding, at its first evidence that names a file (paths
    are from the repository root); a finding without one is annotated without a place."""
    return [annotation(item) for item in verdict.findings if item.status in LEVEL]


def annotation(item: Finding) -> str:
    properties = {}
    located = next((e for e in item.evidence if e.file), None)
    if located is not None:
        derived = _DERIVED.search(located.file)
        properties["file"] = located.file[:derived.start()] if derived else located.file
        if located.line is not None and not derived:  # a decoded payload's lines are not the file's
            properties["line"] = str(located.line)
    properties["title"] = item.check
    fields = ",".join(f"{key}={_escape_property(value)}" for key, value in properties.items())
    return f"::{LEVEL[item.status]} {fields}::{_escape_data(item.message)}"


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def publish(verdict: Verdict, out_dir: Path, summary: str | None) -> dict[str, Path]:
    """Write verdict.json and verdict.md to out_dir and append the Markdown to the step summary file
    (GitHub's $GITHUB_STEP_SUMMARY) when one is given; return the files written."""
    files = write_verdict(verdict, out_dir)
    if summary:
        try:
            with open(summary, "a", encoding="utf-8") as stream:
                stream.write(files["markdown"].read_text(encoding="utf-8"))
        except OSError as error:
            raise UserError(f"cannot append to the step summary ({error.strerror})", summary) from None
        files["summary"] = Path(summary)
    return files


def write_verdict(verdict: Verdict, out_dir: Path) -> dict[str, Path]:
    files = {"json": out_dir / "verdict.json", "markdown": out_dir / "verdict.md"}
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        with files["json"].open("w", encoding="utf-8") as stream:
            write_json(verdict, stream)
        files["markdown"].write_text(to_markdown(verdict), encoding="utf-8")
    except OSError as error:
        raise UserError(f"cannot write the verdict there ({error.strerror})", out_dir) from None
    return files
