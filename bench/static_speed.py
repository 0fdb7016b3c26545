"""Speed of the static stage: the compliance scan of one large script, and `tools/scan_corpus.py` and
`tools/check_many.py` over many record folders (targets: one 1,500-line script under 1 s; 300 folders
under 60 s on 2 cores).

    python bench/static_speed.py [RECORDS_DIR] [--copies 5] [--jobs 2]

RECORDS_DIR is a tree of submission folders (default: ../upstream/records, a checkout of the public
challenge repository beside this one). The folders are hard-linked `--copies` times into a temporary
tree so that the batch tools see that many distinct folders. Prints a table and writes
bench/results/static_speed_<device>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from harness.compliance import scan_path  # noqa: E402
from harness.reproduce.runner import describe_hardware  # noqa: E402


def submission_folders(root: Path) -> list[Path]:
    return sorted({p.parent for p in root.rglob("submission*.json")} | {p.parent for p in root.rglob("train_gpt.py")})


def largest_script(folders: list[Path]) -> Path:
    scripts = [f / "train_gpt.py" for f in folders if (f / "train_gpt.py").is_file()]
    return max(scripts, key=lambda p: len(p.read_bytes().splitlines()))


def time_scan(folder: Path, repeats: int = 5) -> tuple[float, int]:
    scan_path(folder)  # warm the interpreter's imports and caches
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        report = scan_path(folder)
        times.append(time.perf_counter() - started)
    return statistics.median(times), report.files[0]["lines"]


def time_tool(tool: str, tree: Path, jobs: int) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, str(REPO / "tools" / tool), str(tree), "--jobs", str(jobs)],
                   check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("records", nargs="?", type=Path, default=REPO.parent / "upstream" / "records")
    parser.add_argument("--copies", type=int, default=5)
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    folders = submission_folders(args.records)
    if not folders:
        sys.exit(f"{args.records}: no submission folders found")
    script = largest_script(folders)
    scan_s, lines = time_scan(script.parent)
    with tempfile.TemporaryDirectory(prefix="pgolf-static-") as tmp:
        tree = Path(tmp)
        for copy in range(args.copies):
            for index, folder in enumerate(folders):
                shutil.copytree(folder, tree / f"c{copy}" / f"{index:03d}_{folder.name}", copy_function=os.link)
        count = len(folders) * args.copies
        scan_corpus_s = time_tool("scan_corpus.py", tree, args.jobs)
        check_many_s = time_tool("check_many.py", tree, args.jobs)
    result = {
        "device": describe_hardware(1), "jobs": args.jobs, "folders": count,
        "largest_script": str(script.relative_to(args.records)), "largest_script_lines": lines,
        "scan_one_script_s": round(scan_s, 3), "scan_corpus_s": round(scan_corpus_s, 2),
        "check_many_s": round(check_many_s, 2),
        "targets": {"scan_one_script_s": 1.0, "folders_300_s": 60.0},
    }
    print(f"{'measurement':<40}{'seconds':>10}")
    print(f"{f'scan of {script.parent.name[:24]} ({lines} lines)':<40}{scan_s:>10.3f}")
    print(f"{f'tools/scan_corpus.py, {count} folders':<40}{scan_corpus_s:>10.2f}")
    print(f"{f'tools/check_many.py, {count} folders':<40}{check_many_s:>10.2f}")
    print(f"device: {result['device']}, {args.jobs} jobs")
    slug = re.sub(r"[^a-z0-9]+", "-", result["device"].lower()).strip("-")
    out = REPO / "bench" / "results" / f"static_speed_{slug}.json"
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"written: {out.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
