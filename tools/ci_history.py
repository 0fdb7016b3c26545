"""Run the pull-request gate over the challenge's own history: `harness ci` on every first-parent commit
that adds files under records/ (the merge of a pull request, first parent as base; or a squash-merged
commit and its parent), one after another, as CI would run it.

    python tools/ci_history.py [REPO] [--ref main] [--limit N] [--out bench/results/ci_history.json]

REPO is a clone of openai/parameter-golf (default /tmp/pg). Prints one row per pull request and the
totals: how many pass and fail, which checks fail how often, and the seconds per pull request (the whole
command: start-up, git, the static check). "pass" counts the pull requests the gate lets through (exit 0:
no check failed, warnings allowed); "outcomes" splits all of them by the verdict's word. Writes the same
as JSON. Exit status: 0, or 2 when a run of `harness ci` crashed or answered with a usage error.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
HARNESS = [sys.executable, "-m", "harness"]


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True).stdout


def record_commits(repo: Path, ref: str) -> list[dict]:
    """First-parent commits of `ref` whose diff against their first parent adds a file under records/,
    newest first, each with whether it is a merge (two parents) or a squash-merged commit."""
    found = []
    for line in git(repo, "rev-list", "--first-parent", "--parents", ref).splitlines():
        commit, *parents = line.split()
        if not parents:
            continue
        added = git(repo, "diff", "--name-only", "--diff-filter=A", "--no-renames", parents[0], commit,
                    "--", "records/").split()
        if added:
            subject = git(repo, "log", "-1", "--format=%s", commit).strip()
            found.append({"commit": commit, "kind": "merge" if len(parents) > 1 else "squash", "subject": subject})
    return found


def run_gate(repo: Path, commit: str) -> dict:
    """`harness ci --json` on one pull request; its outcome, failing checks and wall time."""
    started = time.perf_counter()
    done = subprocess.run([*HARNESS, "ci", "--repo", str(repo), "--base", f"{commit}^1", "--head", commit, "--json"],
                          capture_output=True, text=True, cwd=REPO_ROOT, env=dict(os.environ, GITHUB_ACTIONS="false"))
    seconds = time.perf_counter() - started
    if done.returncode not in (0, 1):
        return {"exit": done.returncode, "seconds": seconds, "error": done.stderr.strip().splitlines()[-1:]}
    verdict = json.loads(done.stdout)
    failed = sorted({f["check"] for f in verdict["findings"] if f["status"] == "fail"})
    return {"exit": done.returncode, "seconds": round(seconds, 2), "outcome": verdict["outcome"],
            "folder": verdict["submission"], "failed": failed, "counts": verdict["counts"]}


def machine() -> str:
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} cores"


def summary(rows: list[dict]) -> dict:
    ran = [r for r in rows if r["exit"] in (0, 1)]
    seconds = [r["seconds"] for r in rows]
    by_check = Counter(check for r in ran for check in r["failed"])
    by_reasons = Counter(", ".join(r["failed"]) for r in ran if r["failed"])
    return {
        "pull_requests": len(rows), "merges": sum(r["kind"] == "merge" for r in rows),
        "squash_merged": sum(r["kind"] == "squash" for r in rows),
        "pass": sum(r["exit"] == 0 for r in rows), "fail": sum(r["exit"] == 1 for r in rows),  # the gate: exit 0 / 1
        "errors": len(rows) - len(ran), "outcomes": dict(Counter(r["outcome"] for r in ran)),
        "fail_by_check": dict(by_check.most_common()), "fail_by_reasons": dict(by_reasons.most_common()),
        "seconds_per_pr": {"mean": round(statistics.fmean(seconds), 2), "median": round(statistics.median(seconds), 2),
                           "max": round(max(seconds), 2), "total": round(sum(seconds), 1)},
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("repo", nargs="?", default="/tmp/pg", help="a clone of openai/parameter-golf")
    parser.add_argument("--ref", default="HEAD", help="the branch whose first-parent history is walked")
    parser.add_argument("--limit", type=int, help="only the newest N pull requests")
    parser.add_argument("--out", default=str(REPO_ROOT / "bench" / "results" / "ci_history.json"))
    args = parser.parse_args()
    repo = Path(args.repo)
    commits = record_commits(repo, args.ref)[: args.limit]
    rows = []
    print(f"{'commit':<10} {'kind':<6} {'s':>5}  {'outcome':<7} failing checks / folder")
    for item in commits:
        row = item | run_gate(repo, item["commit"])
        rows.append(row)
        what = ", ".join(row.get("failed", [])) or row.get("folder", "") or "; ".join(row.get("error", []))
        print(f"{row['commit'][:10]} {row['kind']:<6} {row['seconds']:>5.1f}  {row.get('outcome', 'error'):<7} {what}",
              flush=True)
    totals = summary(rows)
    head = git(repo, "rev-parse", args.ref).strip()
    result = {"repository": "openai/parameter-golf", "ref": head, "machine": machine(), **totals, "per_pr": rows}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"\n{totals['pull_requests']} pull requests ({totals['merges']} merges, {totals['squash_merged']} "
          f"squash-merged): {totals['pass']} pass, {totals['fail']} fail, {totals['errors']} errors; "
          f"{totals['seconds_per_pr']['mean']} s per pull request (median {totals['seconds_per_pr']['median']}, "
          f"max {totals['seconds_per_pr']['max']}) on {result['machine']}")
    print("failing checks (pull requests failing each):")
    for check, count in totals["fail_by_check"].items():
        print(f"  {count:>3}  {check}")
    print(f"written: {args.out}")
    return 2 if totals["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
