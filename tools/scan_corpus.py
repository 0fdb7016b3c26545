"""Run the compliance scanner over many submission folders: one line per folder, then totals.

    python tools/scan_corpus.py ../upstream/records/track_10min_16mb ../upstream/records/track_non_record_16mb
    python tools/scan_corpus.py --jobs 2 --json corpus.json RECORDS_DIR...

Each DIR is a submission folder itself (it holds .py files or submission.json) or a folder of them
(searched two levels down, as records/<track>/<folder>). Folders are scanned in parallel processes;
the report lists each folder's verdict, scan time and the rules that hit, and ends with the verdict
distribution and timings. Exit status 0 (this tool reports; it does not judge).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rich.console import Console  # noqa: E402
from rich.progress import Progress  # noqa: E402

from harness.compliance import VERDICTS, scan_path  # noqa: E402
from harness.errors import UserError  # noqa: E402


def is_submission(folder: Path) -> bool:
    return any(p.suffix == ".py" or p.name.startswith("submission") and p.suffix == ".json"
               for p in folder.iterdir() if p.is_file())


def find_folders(roots: list[Path], depth: int = 2) -> list[Path]:
    found: list[Path] = []
    for root in roots:
        if not root.is_dir():
            raise SystemExit(f"{root}: not a folder")
        todo = [(root, 0)]
        while todo:
            folder, level = todo.pop()
            children = sorted((p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")), reverse=True)
            if folder != root and (is_submission(folder) or level >= depth or not children):
                found.append(folder)
            elif folder == root and is_submission(folder):
                found.append(folder)
            else:
                todo.extend((child, level + 1) for child in children)
    return sorted(found)


def scan_one(folder: str) -> dict:
    started = time.perf_counter()
    try:
        report = scan_path(folder)
    except UserError as error:
        return {"folder": folder, "verdict": "error", "error": str(error), "seconds": time.perf_counter() - started}
    hits = Counter(f"{h.rule}:{h.outcome}" for h in report.hits if h.outcome != "note")
    notes = sum(1 for h in report.hits if h.outcome == "note")
    lines = sum(f["lines"] for f in report.files if f["role"] in ("entry", "reached"))
    return {"folder": folder, "verdict": report.verdict, "seconds": time.perf_counter() - started, "scan_seconds": report.elapsed_s,
            "hits": dict(sorted(hits.items())), "notes": notes, "lines": lines, "reasons": report.reasons,
            "wrapped": [f["label"] for f in report.files if f["wrapped_by"]]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("dirs", nargs="+", type=Path, help="submission folders or folders holding them")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="parallel processes (default: CPU count)")
    parser.add_argument("--json", metavar="FILE", help="also write every folder's result as JSON to FILE")
    parser.add_argument("--reasons", action="store_true", help="print why each folder got its verdict")
    args = parser.parse_args(argv)
    folders = find_folders(args.dirs)
    console = Console()
    started = time.perf_counter()
    results: list[dict] = []
    with Progress(console=console, transient=True, disable=not console.is_terminal) as progress:
        task = progress.add_task("scanning", total=len(folders))
        with ProcessPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            for result in pool.map(scan_one, [str(f) for f in folders]):
                results.append(result)
                progress.advance(task)
    wall = time.perf_counter() - started
    for result in results:
        hits = " ".join(f"{k}×{v}" for k, v in result.get("hits", {}).items())
        name = Path(result["folder"]).parent.name + "/" + Path(result["folder"]).name
        console.print(f"{result['verdict']:22} {result['seconds']:6.2f}s {result.get('lines', 0):6d} lines  {name}  {hits}",
                      highlight=False, soft_wrap=True)
        if args.reasons:
            for reason in result.get("reasons", []):
                console.print(f"{'':30}- {reason}", highlight=False, soft_wrap=True)
    counts = Counter(r["verdict"] for r in results)
    console.print("\n" + "  ".join(f"{v}: {counts.get(v, 0)}" for v in VERDICTS + ("error",) if counts.get(v, 0) or v in VERDICTS))
    slowest = max(results, key=lambda r: r["seconds"]) if results else None
    per_folder = sum(r["seconds"] for r in results) / max(1, len(results))
    console.print(f"{len(results)} folders in {wall:.1f} s wall with {args.jobs} process(es); mean {per_folder:.2f} s per folder"
                  + (f", slowest {slowest['seconds']:.2f} s ({Path(slowest['folder']).name})" if slowest else ""))
    if args.json:
        Path(args.json).write_text(json.dumps({"wall_seconds": wall, "jobs": args.jobs, "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
