"""Run `harness check` over many submission folders: one summary line per folder, then totals.

    python tools/check_many.py DIR... [--jobs N] [--details] [--summary] [--summary-json FILE]

Each DIR is a submission folder, or a tree holding them (a copy of the challenge repository, its
records/ folder, a track folder): a folder counts as a submission when it holds a submission*.json or
lies directly in a track folder (records/track_10min_16mb/<name>/); the walk does not descend into one.
Folders are checked in a process pool (default: one worker per CPU). Exit status: 0 when no folder
failed, 1 when one did, 2 when no submission folder was found or a check crashed.

`--summary` prints, per check id, how many folders pass, warn, fail and skip it (a folder counts once
per check, under the worst status its findings for that check have: fail, warn, pass, skip), so that
two runs over the same records can be compared; `--summary-json FILE` writes that table with each
folder's statuses and failing messages.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from harness.errors import UserError  # noqa: E402
from harness.findings import FAIL, PASS, SKIP, STATUSES, WARN  # noqa: E402
from harness.progress import progress  # noqa: E402
from harness.rules import TRACKS  # noqa: E402

SKIPPED_DIRS = {".git", "__pycache__", "node_modules", ".venv"}
ERROR = "error"
WORST_FIRST = (FAIL, WARN, PASS, SKIP)  # a folder's status for a check: its worst finding's


def find_submissions(root: Path) -> list[Path]:
    """Submission folders at or under `root`, sorted."""
    if _is_submission(root):
        return [root]
    found: list[Path] = []
    for dirpath, dirnames, _ in os.walk(root):
        here = Path(dirpath)
        dirnames[:] = sorted(d for d in dirnames if d not in SKIPPED_DIRS and not (here / d).is_symlink())
        for name in list(dirnames):
            if _is_submission(here / name):
                found.append(here / name)
                dirnames.remove(name)
    return sorted(found)


def _is_submission(folder: Path) -> bool:
    if folder.parent.name in TRACKS and folder.is_dir():
        return True
    try:
        return any(p.name.startswith("submission") and p.suffix == ".json" for p in folder.iterdir())
    except OSError:
        return False


def check_one(folder: str) -> dict:
    """The check's outcome for one folder, reduced to what the summary line needs."""
    from harness.pipeline import check  # imported in the worker: each process loads harness once

    started = time.perf_counter()
    try:
        verdict = check(folder)
    except UserError as error:
        return {"folder": folder, "outcome": ERROR, "error": str(error), "seconds": time.perf_counter() - started}
    except Exception as error:  # a crash is a bug in the harness: show it, keep going with the others
        return {"folder": folder, "outcome": ERROR, "seconds": time.perf_counter() - started,
                "error": f"{type(error).__name__}: {error} ({traceback.extract_tb(error.__traceback__)[-1].name})"}
    return {
        "folder": folder, "outcome": verdict.outcome, "counts": verdict.counts(),
        "seconds": time.perf_counter() - started,
        "failed": sorted({f.check for f in verdict.findings if f.status == FAIL}),
        "warned": sorted({f.check for f in verdict.findings if f.status == WARN}),
        "checks": [(f.check, f.status) for f in verdict.findings],
        "failures": [(f.check, f.message) for f in verdict.findings if f.status == FAIL],
    }


def _shown(result: dict, base: Path | None) -> str:
    folder = Path(result["folder"]).resolve()
    return str(folder.relative_to(base) if base is not None and folder.is_relative_to(base) else folder)


def summary_line(result: dict, base: Path | None) -> str:
    shown = _shown(result, base)
    if result["outcome"] == ERROR:
        return f"{ERROR.upper():5} {shown}: {result['error']}"
    counts = result["counts"]
    tally = " ".join(f"{counts[s]:2d} {s}" for s in (FAIL, WARN, PASS, SKIP))
    failed = f"  failed: {', '.join(result['failed'])}" if result["failed"] else ""
    return f"{result['outcome'].upper():5} {tally}  {shown}{failed}"


def totals(results: list[dict]) -> list[str]:
    outcomes = Counter(r["outcome"] for r in results)
    by_check: dict[str, Counter] = {}
    for result in results:
        for check, status in set(result.get("checks", [])):
            by_check.setdefault(check, Counter())[status] += 1
    lines = [f"{len(results)} folders: " + ", ".join(f"{outcomes[s]} {s}" for s in (*STATUSES, ERROR) if outcomes[s])]
    lines.append("folders with at least one finding of each status, per check:")
    for check in sorted(by_check):
        counts = by_check[check]
        lines.append(f"  {check:22} " + "  ".join(f"{counts[s]:3d} {s}" for s in (FAIL, WARN, PASS, SKIP)))
    return lines


def folder_statuses(result: dict) -> dict[str, str]:
    """One status per check id for a folder: the worst of its findings for that check."""
    statuses: dict[str, str] = {}
    for check, status in result.get("checks", []):
        if check not in statuses or WORST_FIRST.index(status) < WORST_FIRST.index(statuses[check]):
            statuses[check] = status
    return statuses


def summary(results: list[dict], base: Path | None) -> dict:
    """Per check id, how many folders pass, warn, fail and skip it; each folder's statuses and failures."""
    by_check: dict[str, Counter] = {}
    folders = {}
    for result in results:
        statuses = folder_statuses(result)
        for check, status in statuses.items():
            by_check.setdefault(check, Counter())[status] += 1
        folders[_shown(result, base)] = {
            "outcome": result["outcome"], "statuses": dict(sorted(statuses.items())),
            "failures": [{"check": c, "message": m} for c, m in result.get("failures", [])],
            **({"error": result["error"]} if result["outcome"] == ERROR else {})}
    outcomes = Counter(r["outcome"] for r in results)
    return {
        "folders": len(results),
        "outcomes": {s: outcomes[s] for s in (*STATUSES, ERROR) if outcomes[s]},
        "checks": {check: {s: by_check[check][s] for s in WORST_FIRST} for check in sorted(by_check)},
        "per_folder": folders,
    }


def summary_table(table: dict) -> list[str]:
    width = max([len("check"), *map(len, table["checks"])])
    lines = [f"{'check':{width}}  " + "  ".join(f"{s:>4}" for s in WORST_FIRST),
             f"{'-' * width}  " + "  ".join("-" * 4 for _ in WORST_FIRST)]
    for check, counts in table["checks"].items():
        lines.append(f"{check:{width}}  " + "  ".join(f"{counts[s]:4d}" for s in WORST_FIRST))
    shown = ", ".join(f"{n} {s}" for s, n in table["outcomes"].items())
    lines.append(f"{table['folders']} folders ({shown}); each folder counted once per check, under its worst status")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run `harness check` over many submission folders.")
    parser.add_argument("dirs", nargs="+", metavar="DIR", help="submission folders or trees that hold them")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="worker processes (default: CPUs)")
    parser.add_argument("--details", action="store_true", help="also list each folder's warned checks")
    parser.add_argument("--summary", action="store_true",
                        help="print per check id how many folders pass, warn, fail and skip it")
    parser.add_argument("--summary-json", metavar="FILE", help="write that summary, with each folder's statuses, as JSON")
    args = parser.parse_args(argv)
    folders: list[Path] = []
    for name in args.dirs:
        root = Path(name)
        if not root.is_dir():
            print(f"error: {name}: no such folder", file=sys.stderr)
            return 2
        folders += find_submissions(root)
    if not folders:
        print("error: no submission folder found (a folder with submission*.json, or one in a track folder)",
              file=sys.stderr)
        return 2
    base = Path(args.dirs[0]).resolve().parent if len(args.dirs) == 1 else None
    started = time.perf_counter()
    results: list[dict] = []
    with progress(f"checking {len(folders)} folders with {args.jobs} workers", len(folders)) as advance, \
            ProcessPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        for result in pool.map(check_one, [str(f) for f in folders], chunksize=4):
            results.append(result)
            advance(1)
    for result in results:
        print(summary_line(result, base))
        if args.details and result.get("warned"):
            print(f"      warned: {', '.join(result['warned'])}")
    if args.summary:
        for line in summary_table(summary(results, base)):
            print(line)
    else:
        for line in totals(results):
            print(line)
    if args.summary_json:
        Path(args.summary_json).write_text(json.dumps(summary(results, base), indent=1) + "\n", encoding="utf-8")
    print(f"{len(results)} folders in {time.perf_counter() - started:.1f} s")
    if any(r["outcome"] == ERROR for r in results):
        return 2
    return 1 if any(r["outcome"] == FAIL for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
