"""Wall time of `harness verify` on real record folders, and how much of it is the harness's own.

    python bench/verify_records.py --folder DIR [--folder DIR ...] [--extra NAME="ARGS"] [--common "ARGS"] [--out RUN_DIR]

Each folder is one `python -m harness verify FOLDER --out RUN_DIR/<name> --json --force [--common ARGS]
[--extra ARGS of that name]` subprocess (--force: every seed is trained and evaluated, never reused).
From its verdict.json it records the verify status, the findings' outcome counts, the stage timings
(measurements.timings_s), each seed's script process wall time, training and evaluation time, and its
reproduced and trusted val_bpb. The harness's overhead is the wall time minus the seeds' script
processes and minus the probe stage (a second, shortened run of the script on the probe stream, shown in
a column of its own): static checks, smoke, staging, the trusted re-evaluation and judging (target: at
most 10 % of the wall). Prints a table and writes bench/results/verify_<device>.json, rewritten after each folder so
that a run cut short keeps what finished.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from harness.reproduce.runner import describe_hardware  # noqa: E402

OVERHEAD_TARGET = 0.10
STAGES = ("check", "smoke", "reproduce", "re_evaluate", "probe", "judge", "total")
SEED_KEYS = ("seed", "status", "wall_s", "train_time_s", "eval_time_s", "steps", "own_val_bpb", "trusted_val_bpb",
             "trusted_wall_s")


def verify_folder(folder: Path, common: list[str], extra: list[str], run_dir: Path) -> dict:
    out = run_dir / folder.name
    command = [sys.executable, "-m", "harness", "verify", str(folder), "--out", str(out), "--json", "--force",
               *common, *extra]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    started = time.perf_counter()
    proc = subprocess.run(command, env=env, stdout=subprocess.DEVNULL, check=False)  # progress stays on stderr
    wall_s = time.perf_counter() - started
    row = {"folder": folder.name, "extra_args": extra, "exit_code": proc.returncode, "wall_s": round(wall_s, 2)}
    verdict_path = out / "verdict.json"
    if not verdict_path.is_file():
        return row | {"verify_status": f"no verdict.json (exit {proc.returncode})"}
    verdict = json.loads(verdict_path.read_text(encoding="utf-8"))
    measurements = verdict.get("measurements", {})
    seeds = [{key: seed.get(key) for key in SEED_KEYS} for seed in measurements.get("per_seed", [])]
    script_s = sum(seed["wall_s"] or 0.0 for seed in seeds)
    probe_s = measurements.get("timings_s", {}).get("probe") or 0.0
    overhead_s = wall_s - script_s - probe_s
    return row | {
        "verify_status": measurements.get("verify_status"),
        "incomplete_because": measurements.get("incomplete_because"),
        "outcomes": {status: sum(1 for f in verdict.get("findings", []) if f.get("status") == status)
                     for status in ("pass", "fail", "warn", "skip")},
        "failed_checks": sorted({f["check"] for f in verdict.get("findings", []) if f.get("status") == "fail"}),
        "hardware": measurements.get("hardware"), "shortened": measurements.get("shortened"),
        "timings_s": {stage: measurements.get("timings_s", {}).get(stage) for stage in STAGES},
        "per_seed": seeds, "script_wall_s": round(script_s, 2), "probe_s": round(probe_s, 2),
        "overhead_s": round(overhead_s, 2), "overhead_share": round(overhead_s / wall_s, 4),
        "verdict": str(verdict_path),
    }


def show(rows: list[dict], device: str) -> None:
    table = Table(title=f"harness verify on {device} (overhead target <= {OVERHEAD_TARGET:.0%})")
    for column in ("folder", "status", "p/f/w/s", "wall s", "scripts s", "probe s", "overhead",
                   "check/smoke/repro/re-eval/probe/judge s",
                   "own val_bpb", "trusted val_bpb"):
        table.add_column(column, justify="left" if column in ("folder", "status") else "right")
    for row in rows:
        counts, timings, seeds = row.get("outcomes", {}), row.get("timings_s", {}), row.get("per_seed", [])
        share = row.get("overhead_share")
        table.add_row(
            row["folder"], str(row["verify_status"]), "/".join(str(counts.get(k, "-")) for k in ("pass", "fail", "warn", "skip")),
            f"{row['wall_s']:.1f}", f"{row['script_wall_s']:.1f}" if "script_wall_s" in row else "-",
            f"{row['probe_s']:.1f}" if "probe_s" in row else "-",
            f"{row['overhead_s']:.1f} ({share:.0%})" if share is not None else "-",
            "/".join("-" if timings.get(s) is None else f"{timings[s]:.1f}" for s in STAGES[:-1]),
            " ".join(f"{s['own_val_bpb']:.4f}" if s["own_val_bpb"] is not None else "-" for s in seeds) or "-",
            " ".join(f"{s['trusted_val_bpb']:.4f}" if s["trusted_val_bpb"] is not None else "-" for s in seeds) or "-")
    Console(width=None if sys.stdout.isatty() else 200).print(table)  # a log keeps the table's columns whole


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--folder", action="append", required=True, type=Path, help="submission folder (repeatable)")
    parser.add_argument("--extra", action="append", default=[], metavar="NAME=ARGS",
                        help='verify arguments for the folder named NAME only, e.g. 2026-03-20_X="--attention-shim"')
    parser.add_argument("--common", default="", metavar="ARGS", help="verify arguments for every folder")
    parser.add_argument("--out", default=str(REPO / "runs" / "verify_records"), metavar="RUN_DIR",
                        help="where each folder's verify writes (RUN_DIR/<name>)")
    args = parser.parse_args()
    folders = [folder.resolve() for folder in args.folder]
    missing = [str(folder) for folder in folders if not folder.is_dir()]
    if missing:
        parser.error(f"no such folder: {', '.join(missing)}")
    extra = {}
    for item in args.extra:
        name, sep, value = item.partition("=")
        if not sep or name not in {folder.name for folder in folders}:
            parser.error(f"--extra {item!r}: give NAME=ARGS with NAME one of the folders' names")
        extra[name] = shlex.split(value)
    device = re.sub(r"^\d+x ", "", describe_hardware(1))
    result = {"device": device, "common": shlex.split(args.common), "overhead_target_share": OVERHEAD_TARGET, "folders": []}
    out = REPO / "bench" / "results" / f"verify_{re.sub(r'[^a-z0-9]+', '-', device.lower()).strip('-')}.json"
    for folder in folders:
        row = verify_folder(folder, result["common"], extra.get(folder.name, []), Path(args.out).resolve())
        result["folders"].append(row)
        out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    show(result["folders"], device)
    print(f"written: {out.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
