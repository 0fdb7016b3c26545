"""Static compliance scanner: evaluation-legality rules as data (rules.json), one detector per rule.

It reads a submission's Python text and ASTs only: it imports neither torch nor any submission, and
never executes submitted code (self-extracting wrappers are decoded, not run).

    report = scan_path("records/track_10min_16mb/2026-03-23_LeakyReLU_LegalTTT_ParallelMuon")
    report.verdict      # "clean" | "clean_with_legal_ttt" | "needs_review" | "flag"
    report.findings()   # harness.findings.Finding list, check ids compliance.<rule id>

`scan_submission(submission)` does the same for a folder `harness.submission.load_submission` loaded.
"""

from harness.compliance.engine import (CLEAN, CLEAN_WITH_LEGAL_TTT, FLAGGED, NEEDS_REVIEW, VERDICTS, ScanReport,
                                       scan_path, scan_submission, scanned_nothing)
from harness.compliance.ruleset import Rule, RuleSet, load_ruleset

__all__ = ["CLEAN", "CLEAN_WITH_LEGAL_TTT", "FLAGGED", "NEEDS_REVIEW", "VERDICTS", "Rule", "RuleSet", "ScanReport",
           "load_ruleset", "scan_path", "scan_submission", "scanned_nothing"]
