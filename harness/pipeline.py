"""The one module that composes stages: `check` (a folder, statically); `verify` and `ci` build on it.

Stages take plain data and return findings; this module runs them in order, gathers their findings
and numbers into one Verdict, and hands that to the caller (the CLI renders it, tools tabulate it).
"""

from __future__ import annotations

from harness.check.claims import check_claims, claim_measurements
from harness.check.folder import check_folder
from harness.compliance import scan_submission
from harness.findings import Verdict
from harness.judge.significance import significance_findings
from harness.submission.folder import load_submission
from harness.submission.logs import parse_submission_logs
from harness.submission.scores import sample_of


def check(folder: str, against: str | None = None) -> Verdict:
    """The static stage: files, schema, code bytes, logs vs claims, provenance, compliance scan, and with
    `against` the significance test against that reference folder. Runs no code of the submission."""
    submission = load_submission(folder)
    verdict = Verdict(submission=str(submission.path), stage="check")
    verdict.extend(check_folder(submission))
    verdict.measurements.update(submission.measurements())
    compliance = scan_submission(submission)
    verdict.extend(compliance.findings())
    verdict.measurements["compliance_verdict"] = compliance.verdict
    run_logs = parse_submission_logs(submission)
    verdict.extend(check_claims(submission, run_logs))
    verdict.measurements.update(claim_measurements(submission, run_logs))
    if against is not None:
        reference = load_submission(against)
        findings, numbers = significance_findings(
            sample_of(submission.path.name, submission.metadata, run_logs),
            sample_of(reference.path.name, reference.metadata, parse_submission_logs(reference)))
        verdict.extend(findings)
        verdict.measurements.update(numbers)
    return verdict
