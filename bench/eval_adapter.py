"""The product's re-evaluation path on real records, beside the bench's plain path and the records' own evaluators.

    python bench/eval_adapter.py --record DIR [--record DIR ...] [--val-tokens N] [--cap S] [--env K=V ...] [--work DIR]

On one GPU, on synthetic shards (bench/train_step.py's Markov chain, the example tokenizer) whose
validation split is `--val-tokens` long: for each record folder, `harness run-seeds` rebuilds its artifact
with a wall clock of `--cap` seconds (its own final evaluation runs on the same split); `harness eval
--compile always` scores that artifact through the adapter (the product path), and the result's
`warmup_s` (the time to the first batch, compilation included) separates the one-off cost from the
per-token rate: seconds per 62,021,632-token split = warm-up + the rate over the whole split. On the
first `--fp32-tokens` tokens, `harness eval` as a user gets it there (bf16 autocast, eager at that length)
and `harness eval --fp32` give the relative difference from fp32. Once, bench/eval_throughput.py times
the plain fast path on a baseline-shaped model on a stream of the same length. Writes
bench/results/eval_adapter_<device>.json: the first record's numbers at the top level (device, record,
seconds_per_split, bench_plain_seconds_per_split, own_eval_seconds_per_split, max_rel_diff_fp32) and
every record's under "records".
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from eval_throughput import SPLIT_TOKENS, slug  # noqa: E402
from train_step import device_name, make_data  # noqa: E402

from harness.data.location import example_dataset  # noqa: E402
from harness.submission.logs import parse_log  # noqa: E402


def harness(*words: str, timeout: float = 900) -> tuple[float, str]:
    """Run `python -m harness ...`; (wall seconds, stdout). Its progress goes to this process's stderr."""
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "harness", *words], cwd=ROOT, stdout=subprocess.PIPE, text=True,
                          timeout=timeout, check=False)
    if done.returncode not in (0, 1):
        raise SystemExit(f"harness {' '.join(words[:2])} exited {done.returncode}")
    return time.perf_counter() - started, done.stdout


def env_words(settings: list[str]) -> list[str]:
    return [word for setting in settings for word in ("--env", setting)]


def eval_json(record: Path, artifact: Path, data: Path, tokenizer: Path, *extra: str, env: list[str]) -> tuple[float, dict]:
    wall, out = harness("eval", str(record), "--artifact", str(artifact), "--data", str(data),
                        "--tokenizer", str(tokenizer), "--json", *env_words(env), *extra)
    verdict = json.loads(out)
    if "val_bpb" not in verdict["measurements"]:
        raise SystemExit(f"no trusted number for {record.name}: {verdict['findings']}")
    return wall, verdict["measurements"]


def measure_record(record: Path, data: Path, tokenizer: Path, args: argparse.Namespace, scale: float) -> dict:
    runs = Path(args.work) / "runs" / record.name
    wall, _ = harness("run-seeds", "--submission", str(record), "--seeds", "1337", "--data", str(data),
                      "--tokenizer", str(tokenizer), "--out", str(runs), "--force", "--timeout", "900",
                      "--env", f"MAX_WALLCLOCK_SECONDS={args.cap}", *env_words(args.env))
    seed = json.loads((runs / "seed_1337.json").read_text())
    if seed["status"] != "ok":
        raise SystemExit(f"{record.name}: the run {seed['status']}: {seed['error']}")
    artifact = runs / seed["artifact"]
    log = parse_log(runs / (seed["log"] or seed["console_log"]))
    own = log.score()
    eval_wall, trusted = eval_json(record, artifact, data, tokenizer, "--compile", "always", env=args.env)
    steady = trusted["wall_s"] - trusted["warmup_s"]
    scale_rate = SPLIT_TOKENS / trusted["tokens"]
    _, bf16 = eval_json(record, artifact, data, tokenizer, "--compile", "never", "--max-tokens", str(args.fp32_tokens),
                        env=args.env)
    _, fp32 = eval_json(record, artifact, data, tokenizer, "--compile", "never", "--max-tokens", str(args.fp32_tokens),
                        "--fp32", env=args.env)
    return {
        "record": record.name,
        "seconds_per_split": round(trusted["warmup_s"] + steady * scale_rate, 2),
        "steady_seconds_per_split": round(steady * scale_rate, 2),
        "warmup_s": round(trusted["warmup_s"], 2),
        "microseconds_per_token": round(steady / trusted["tokens"] * 1e6, 4),
        "wall_s_at_val_tokens": round(trusted["wall_s"], 2),
        "command_wall_s": round(eval_wall, 2),
        "own_eval_seconds_per_split": round(own.eval_time_ms / 1000 * scale, 2) if own and own.eval_time_ms else None,
        "own_eval_mode": own.mode if own else None,
        "max_rel_diff_fp32": abs(bf16["val_bpb"] - fp32["val_bpb"]) / fp32["val_bpb"],
        "trusted_val_bpb": trusted["val_bpb"], "own_val_bpb": own.val_bpb if own else None,
        "adapter": trusted.get("adapter"), "notes": trusted.get("notes"),
        "run_wall_s": round(wall, 1), "steps": log.last_step,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--record", action="append", required=True, help="record folder (repeatable)")
    parser.add_argument("--val-tokens", type=int, default=SPLIT_TOKENS // 20)
    parser.add_argument("--train-tokens", type=int, default=20_000_000)
    parser.add_argument("--cap", type=float, default=30.0, help="each record's MAX_WALLCLOCK_SECONDS")
    parser.add_argument("--env", action="append", default=[], metavar="KEY=VALUE",
                        help="a setting for every record's run and evaluation (repeatable)")
    parser.add_argument("--fp32-tokens", type=int, default=300_000, help="prefix scored in bf16 and in fp32")
    parser.add_argument("--work", default=str(ROOT / "runs" / "eval_adapter"))
    parser.add_argument("--out-dir", default=str(ROOT / "bench" / "results"))
    args = parser.parse_args()
    root = Path(args.work) / "data"
    make_data(root, example_dataset().tokenizer_path, args.train_tokens, args.val_tokens, 1024)
    data, tokenizer = root / "datasets" / "fineweb10B_sp1024", root / "tokenizers" / "fineweb_1024_bpe.model"
    scale = SPLIT_TOKENS / args.val_tokens
    plain_dir = Path(args.work) / "plain"
    subprocess.run([sys.executable, str(ROOT / "bench" / "eval_throughput.py"), "--tokens", str(args.val_tokens),
                    "--no-naive", "--repeats", "2", "--out-dir", str(plain_dir)], cwd=ROOT, check=True)
    plain = json.loads(next(plain_dir.glob("eval_throughput_*.json")).read_text())
    device = device_name()
    records = []
    for record in args.record:
        try:
            records.append(measure_record(Path(record).resolve(), data, tokenizer, args, scale))
        except (SystemExit, subprocess.TimeoutExpired, OSError, ValueError, KeyError) as error:
            records.append({"record": Path(record).name, "error": str(error)})  # the others still run
        print(json.dumps(records[-1]), flush=True)
    measured = [row for row in records if "error" not in row]
    if not measured:
        raise SystemExit("no record could be measured")
    results = {"device": device, **{k: measured[0][k] for k in ("record", "seconds_per_split",
                                                               "own_eval_seconds_per_split", "max_rel_diff_fp32")},
               "bench_plain_seconds_per_split": plain["seconds_per_split"], "val_tokens": args.val_tokens,
               "scale_to_split": scale, "cap_s": args.cap, "records": records}
    out = Path(args.out_dir, f"eval_adapter_{slug(device)}.json")
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"{'record':42} {'adapter s/split':>16} {'own s/split':>12} {'plain s/split':>14} {'fp32 rel diff':>14}")
    for row in measured:
        print(f"{row['record']:42} {row['seconds_per_split']:>16} {str(row['own_eval_seconds_per_split']):>12} "
              f"{plain['seconds_per_split']:>14} {row['max_rel_diff_fp32']:>14.2e}")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
