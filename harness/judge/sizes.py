"""Judging sizes as measured from the files a reproduction wrote (R1.1), against the cap and the claims."""

from __future__ import annotations

from harness import rules
from harness.findings import FAIL, PASS, SKIP, WARN, Finding, finding
from harness.judge.evidence import SeedRun


def size_findings(runs: list[SeedRun], claimed_total: int | None, source: str) -> list[Finding]:
    """judge.size per seed (rebuilt artifact + counted code against the cap) and judge.size_claim (the
    measured total against what the reproduced log and submission.json state)."""
    measured = [run for run in runs if run.total_bytes is not None]
    if not measured:
        return [finding("judge.size", SKIP, "no run left an artifact to measure")]
    found = []
    cap = rules.ARTIFACT_CAP_BYTES
    for run in measured:
        total = run.total_bytes
        values = dict(seed=run.seed, artifact_bytes=run.artifact_bytes, code_bytes=run.code_bytes,
                      total_bytes=total, cap=cap)
        if total < cap:
            found.append(finding("judge.size", PASS, f"seed {run.seed}: {total:,} bytes (artifact "
                                 f"{run.artifact_bytes:,} + code {run.code_bytes:,}) < {cap:,}", file=run.artifact,
                                 **values))
        elif total == cap:
            found.append(finding("judge.size", WARN, f"seed {run.seed}: exactly {cap:,} bytes: within the cap "
                                 "only if '<16MB' is read as '<=' (R1.1)", file=run.artifact, **values))
        else:
            found.append(finding("judge.size", FAIL, f"seed {run.seed}: {total:,} bytes after the rebuild, "
                                 f"{total - cap:,} over the {cap:,}-byte cap", file=run.artifact, **values))
    found.append(_size_claim(measured, claimed_total, source))
    return found


def _size_claim(measured: list[SeedRun], claimed_total: int | None, source: str) -> Finding:
    off_log = [run for run in measured if run.logged_total_bytes is not None and run.logged_total_bytes != run.total_bytes]
    largest = max(run.total_bytes for run in measured)
    values = dict(measured_max=largest, claimed=claimed_total,
                  logged={str(run.seed): run.logged_total_bytes for run in measured})
    problems = [f"seed {run.seed}: its log states {run.logged_total_bytes:,}, the files measure {run.total_bytes:,}"
                for run in off_log]
    if claimed_total is not None and largest > claimed_total and largest >= rules.ARTIFACT_CAP_BYTES:
        problems.append(f"{source} claims {claimed_total:,} bytes, the rebuild measures up to {largest:,}, over the cap")
    if problems:
        status = FAIL if any(run.total_bytes > rules.ARTIFACT_CAP_BYTES for run in measured) else WARN
        return finding("judge.size_claim", status, "; ".join(problems), **values)
    said = f"; {source} claims {claimed_total:,} (its own run's bytes)" if claimed_total is not None else ""
    return finding("judge.size_claim", PASS, f"each log's stated total equals the measured bytes{said}", **values)
