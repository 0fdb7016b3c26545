"""Multi-GPU scaling of the trusted evaluator: bench/eval_throughput.py under torchrun for 1, 2, 4 GPUs.

    PYTHONPATH=. python bench/eval_scaling.py [--nprocs 1,2,4] [--tokens N] [--out-dir DIR]

Each GPU count is one `torchrun --standalone --nproc_per_node K bench/eval_throughput.py --no-naive` run
on the same synthetic stream (by default the validation split's size, 62,021,632 tokens, so nothing is
scaled) and the same baseline-shaped model. The windows are split across ranks and the float64 sums
all-reduced, so every count must give the same val_loss and val_bpb. Reports seconds per split,
tokens/s, the speed-up over one GPU, and the largest relative difference of val_loss / val_bpb between
counts, in a table and in bench/results/eval_scaling_<device>.json. Counts above the GPUs this machine
has are not run, and the result says so (their keys are null). Extra arguments after `--` go to
eval_throughput.py (for instance `-- --small --seq-len 64 --stride 16` for a CPU check with gloo).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from eval_throughput import SPLIT_TOKENS, max_rel_diff, slug  # noqa: E402


def available_gpus() -> int:
    try:
        import torch

        return torch.cuda.device_count() if torch.cuda.is_available() else 0
    except ImportError:
        return 0


def run_count(nproc: int, tokens: int, repeats: int, extra: list[str], work: Path) -> dict:
    out_dir = work / f"nproc{nproc}"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
               str(ROOT / "bench" / "eval_throughput.py"), "--no-naive", "--tokens", str(tokens),
               "--repeats", str(repeats), "--out-dir", str(out_dir), *extra]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
           "PYTHONUNBUFFERED": "1"}
    start = time.perf_counter()
    proc = subprocess.run(command, env=env, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"torchrun with {nproc} process(es) failed (exit {proc.returncode}); its output is above")
    results = sorted(out_dir.glob("eval_throughput_*.json"))
    if len(results) != 1:
        raise SystemExit(f"expected one result file in {out_dir}, found {len(results)}")
    result = json.loads(results[0].read_text())
    result["run_wall_s"] = round(time.perf_counter() - start, 1)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nprocs", default="1,2,4", help="comma-separated process counts")
    parser.add_argument("--tokens", type=int, default=SPLIT_TOKENS, help="synthetic stream length")
    parser.add_argument("--repeats", type=int, default=1, help="timed runs per count (median)")
    parser.add_argument("--cpu", action="store_true", help="run on the CPU with gloo (a check, not a measurement)")
    parser.add_argument("--out-dir", default=str(ROOT / "bench" / "results"))
    args, extra = parser.parse_known_args()
    extra = [a for a in extra if a != "--"]
    try:
        counts = sorted({int(k) for k in args.nprocs.split(",") if k.strip()})
    except ValueError:
        counts = []
    if not counts or counts[0] < 1:
        parser.error("--nprocs takes positive integers, e.g. 1,2,4")
    gpus = available_gpus()
    limit = max(counts) if args.cpu else gpus
    if not args.cpu and gpus == 0:
        parser.error("no CUDA device here; --cpu runs the check with gloo processes")
    runnable = [k for k in counts if k <= limit]
    if 1 not in runnable:
        parser.error("the 1-process run is the reference every other count is compared with")

    with tempfile.TemporaryDirectory(prefix="pgolf_eval_scaling_") as tmp:
        if args.cpu:
            os.environ["CUDA_VISIBLE_DEVICES"] = ""
        runs = {k: run_count(k, args.tokens, args.repeats, extra, Path(tmp)) for k in runnable}

    one = runs[1]
    per_count = {}
    for k, r in runs.items():
        per_count[str(k)] = {
            "device": r["device"], "seconds_per_split": r["seconds_per_split"], "tokens_per_s": r["tokens_per_s"],
            "speedup": round(one["seconds_per_split"] / r["seconds_per_split"], 3),
            "compile_s": r["compile_s"], "fast_wall_s": r["fast_wall_s"], "run_wall_s": r["run_wall_s"],
            "val_loss": r["val_loss_fast"], "val_bpb": r["val_bpb_fast"],
            "rel_diff_vs_1": max_rel_diff((r["val_loss_fast"], r["val_bpb_fast"]),
                                          (one["val_loss_fast"], one["val_bpb_fast"])),
        }
    not_run = [k for k in counts if k not in runs]
    result = {
        "device": one["device"],
        "gpus_on_machine": gpus,
        "torch": one["torch"],
        "model": one["model"],
        "stream_tokens": one["stream_tokens"], "windows": one["windows"],
        "seq_len": one["seq_len"], "stride": one["stride"], "batch_windows": one["batch_windows"],
        "scaling": one["scaling"],
        "seconds_per_split": {k: v["seconds_per_split"] for k, v in per_count.items()},
        "speedup_2gpu": per_count["2"]["speedup"] if "2" in per_count else None,
        "speedup_4gpu": per_count["4"]["speedup"] if "4" in per_count else None,
        "max_rel_diff": max(v["rel_diff_vs_1"] for v in per_count.values()),
        "not_run": {str(k): f"this machine has {gpus} GPU(s)" for k in not_run},
        "per_count": per_count,
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
    }
    out = Path(args.out_dir, f"eval_scaling_{'cpu-check' if args.cpu else slug(one['device'])}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")

    print(f"\n{out}  ({one['device']}, {one['stream_tokens']:,} tokens, stride {one['stride']})")
    print(f"{'GPUs':>5} {'s/split':>10} {'tokens/s':>12} {'speedup':>8} {'rel diff vs 1':>14}")
    for k, v in per_count.items():
        print(f"{k:>5} {v['seconds_per_split']:>10.2f} {v['tokens_per_s']:>12,} {v['speedup']:>8.3f} {v['rel_diff_vs_1']:>14.3e}")
    for k, why in result["not_run"].items():
        print(f"{k:>5}  not run: {why}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
