"""The verdict as JSON: validated against harness/schemas/verdict.schema.json on the way out, and read back
into a Verdict (to render a saved verdict.json again)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, TextIO

from harness.errors import UserError
from harness.findings import Evidence, Finding, Verdict
from harness.schemas import validation_errors


def verdict_json(verdict: Verdict) -> dict[str, Any]:
    """The verdict as a JSON-ready dict, validated against harness/schemas/verdict.schema.json."""
    data = verdict.to_dict()
    errors = validation_errors(data, "verdict")
    if errors:  # our own output breaking our own schema is a bug, not a user error
        raise AssertionError("verdict does not match harness/schemas/verdict.schema.json: " + "; ".join(errors))
    return data


def write_json(verdict: Verdict, stream: TextIO | None = None) -> None:
    stream = stream or sys.stdout  # looked up at call time, so redirected or captured stdout is honoured
    json.dump(verdict_json(verdict), stream, indent=2, sort_keys=False, default=str)
    stream.write("\n")


def load_verdict(path: str | Path) -> Verdict:
    """A verdict.json read back; a file that is not one is a UserError naming it."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as error:
        raise UserError(f"cannot be read ({error.strerror or error})", path) from None
    except ValueError as error:
        raise UserError(f"is not JSON ({error})", path) from None
    errors = validation_errors(data, "verdict")
    if errors:
        raise UserError(f"is not a verdict (harness/schemas/verdict.schema.json): {errors[0]}", path)
    try:
        findings = [Finding(item["check"], item["status"], item["message"],
                            [Evidence(**evidence) for evidence in item.get("evidence", [])])
                    for item in data["findings"]]
    except ValueError as error:  # a check id this version of the harness does not have
        raise UserError(f"holds a finding this harness cannot read: {error}", path) from None
    return Verdict(submission=data["submission"], stage=data["stage"], findings=findings,
                   measurements=data.get("measurements", {}), created=data["created"],
                   harness_version=data["harness_version"], rules_version=data["rules_version"])
