"""What every claims check reads (the folder, its parsed logs, the claims, the score behind them), and the
small helpers their messages share."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping

from harness import rules
from harness.errors import UserError
from harness.findings import Evidence
from harness.submission.folder import README, Submission
from harness.submission.logs import EvalMetric, RunLog
from harness.submission.scores import ClaimedValues, SubmissionScore
from harness.submission.script import CountedScript, counted_script

ROUNDED_ZEROS = 3  # a byte count written with at least this many trailing zeros is a rounded figure
ROUNDED_SHARE = 0.005  # and within half a percent of the measured count


@dataclass
class Context:
    submission: Submission
    logs: Mapping[str, RunLog]
    claims: ClaimedValues
    score: SubmissionScore

    @property
    def backing(self) -> dict[str, RunLog]:
        """The logs behind the claimed score; all logs when no claim matched."""
        if self.score.match is not None:
            return {name: self.logs[name] for name in self.score.logs()}
        return dict(self.logs)

    @property
    def record_track(self) -> bool:
        """The record track's rules apply unless the folder or submission.json says non-record."""
        track = self.submission.track() or self.submission.declared_track()
        return track != rules.NON_RECORD_TRACK

    @property
    def script(self) -> CountedScript:
        return counted_script(self.submission, self.logs)

    def run_metric(self, name: str) -> EvalMetric | None:
        """A log's value in the submission's score mode, else the log's own score."""
        for run in self.score.runs:
            if run.log == name:
                return run.metric
        log = self.logs[name]
        return log.finals.get(self.score.mode) if self.score.mode in log.finals else log.score()

    def readme_lines(self) -> list[str]:
        readme = next((f for f in self.submission.files if f.kind == README and f.refused is None), None)
        if readme is None:
            return []
        try:
            return self.submission.read_text(readme.relpath).splitlines()
        except UserError:
            return []


def rounded_from(claimed: int, measured: int) -> bool:
    """A claim written as a round figure (…000) that is `measured` rounded or cut to the claim's own last
    written digit, and within half a percent of it: 15,900,000 for 15,965,978, 66,000 for 66,055; not
    15,000,000 for 15,800,000 nor 65,000 for 66,055."""
    if claimed <= 0 or measured <= 0 or claimed == measured:
        return False
    zeros = len(str(claimed)) - len(str(claimed).rstrip("0"))
    unit = 10 ** zeros
    figures = (round(measured / unit) * unit, measured // unit * unit)
    return zeros >= ROUNDED_ZEROS and claimed in figures and abs(claimed - measured) <= ROUNDED_SHARE * measured


def run_evidence(runs, key: str) -> list[Evidence]:
    return [Evidence(file=r.log, line=r.metric.line, values={"seed": r.seed, "mode": r.metric.mode,
                                                              key: finite(getattr(r.metric, key))}) for r in runs]


def finite(value: float) -> float | None:
    return value if isinstance(value, (int, float)) and math.isfinite(value) else None


def seconds(ms: float | None) -> float | None:
    return round(ms / 1000.0, 3) if ms is not None and math.isfinite(ms) else None


def listed(items, fmt: str = "{}") -> str:
    return ", ".join(fmt.format(item) for item in items)
