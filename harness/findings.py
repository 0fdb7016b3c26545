"""Findings and verdicts: the plain data every stage returns and every report renders.

A finding says what one check saw: its stable id, pass/fail/warn/skip, one sentence, and the evidence
(file:line and numbers). A check that could not run is `skip` with the reason, never `pass`.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import asdict, dataclass, field
from typing import Any, Iterable

from harness import __version__
from harness.checks import CHECKS
from harness.rules import RULES_VERSION

PASS, FAIL, WARN, SKIP = "pass", "fail", "warn", "skip"
STATUSES = (PASS, FAIL, WARN, SKIP)


@dataclass
class Evidence:
    """Where a finding looked and what it measured: a file, optionally a line and an excerpt."""

    file: str | None = None
    line: int | None = None
    excerpt: str | None = None
    values: dict[str, Any] = field(default_factory=dict)

    def location(self) -> str:
        if self.file is None:
            return ""
        return f"{self.file}:{self.line}" if self.line is not None else self.file


@dataclass
class Finding:
    check: str  # stable id users can search for, e.g. "files.required": a row of harness.checks.CHECKS
    status: str  # one of STATUSES
    message: str  # one sentence
    evidence: list[Evidence] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"finding {self.check}: unknown status {self.status!r}")
        if self.check not in CHECKS:
            raise ValueError(f"finding {self.check!r}: not a check id; add its row to harness/checks.py")


def finding(check: str, status: str, message: str, *, file: str | None = None, line: int | None = None,
            excerpt: str | None = None, **values: Any) -> Finding:
    """Build a finding with at most one piece of evidence (the common case)."""
    evidence = []
    if file is not None or line is not None or excerpt is not None or values:
        evidence.append(Evidence(file=file, line=line, excerpt=excerpt, values=values))
    return Finding(check=check, status=status, message=message, evidence=evidence)


@dataclass
class Verdict:
    """What the harness concluded about one submission folder: findings plus measured numbers."""

    submission: str
    stage: str  # "check", "scan", "verify", ...
    findings: list[Finding] = field(default_factory=list)
    measurements: dict[str, Any] = field(default_factory=dict)
    created: str = field(default_factory=lambda: _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"))
    harness_version: str = __version__
    rules_version: str = RULES_VERSION

    def extend(self, findings: Iterable[Finding]) -> None:
        self.findings.extend(findings)

    def counts(self) -> dict[str, int]:
        return {status: sum(1 for f in self.findings if f.status == status) for status in STATUSES}

    @property
    def outcome(self) -> str:
        """fail if any check failed; else warn if any warned; else pass. Skips never make a pass fail,
        but a verdict made only of skips is not a pass either."""
        counts = self.counts()
        if counts[FAIL]:
            return FAIL
        if counts[WARN]:
            return WARN
        if counts[PASS] == 0:
            return SKIP
        return PASS

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["outcome"] = self.outcome
        data["counts"] = self.counts()
        for item in data["findings"]:
            for ev in item["evidence"]:
                for key in [k for k, v in ev.items() if v is None]:
                    del ev[key]
                if not ev.get("values"):
                    ev.pop("values", None)
        return data
