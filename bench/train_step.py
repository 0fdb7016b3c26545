"""Training speed of the reference trainer against the challenge's baseline script, side by side.

Both scripts train at the baseline configuration (or whatever KEY=VALUE overrides say) on the same
synthetic shards, same seed, one after the other on the same device, for --steps steps. From their
logs: tokens per second and ms per step over the timed steps (the log's own train_time, which leaves
out compilation, warm-up and validation), the training loss at the last step and averaged over the
last few logged steps, and the validation loss at the last step. Writes
<out-dir>/train_step_<device>.json and prints a table.

The synthetic data: documents that start with BOS (id 1), drawn from a fixed random Markov chain
whose context is the previous token plus two bits of the one before (16 successors per context, with
Zipf weights, themselves drawn from a Zipf law over the vocabulary), so the loss falls from ln(vocab)
toward the chain's entropy over hundreds of steps, as on text, and two trainers can be compared.

    python bench/train_step.py --baseline .upstream/baseline_train_gpt.py \
        --tokenizer .upstream/fineweb_1024_bpe.model --steps 200 --out-dir bench/results
"""

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
OURS = REPO / "reference_train" / "train_gpt.py"
SHARD_MAGIC, SHARD_VERSION, SHARD_HEADER_INTS = 20240520, 1, 256
BOS_ID, FIRST_PLAIN_ID = 1, 4  # ids 0-3 are pad/bos/eos/unk in the challenge's tokenizers
FANOUT, DOC_LEN, ZIPF_EXPONENT = 16, 512, 1.1
DEFAULT_BATCH_TOKENS = 524_288
LAST_LOGS_AVERAGED = 5  # and the second half's logged losses: single-batch losses are noisy

STEP_TRAIN = re.compile(r"^step:(\d+)/\d+ train_loss:([\d.na]+) train_time:([\d.]+)ms")
STEP_VAL = re.compile(r"^step:(\d+)/\d+ val_loss:([\d.na]+) val_bpb:([\d.na]+) train_time:([\d.]+)ms")
ROUNDTRIP = re.compile(r"^final_\w+_roundtrip_exact val_loss:([\d.na]+) val_bpb:([\d.na]+)")
PEAK = re.compile(r"^peak memory allocated: (\d+) MiB")
BACKEND = re.compile(r"^(attention_backend:.*|sdp_backends:.*)$")


def write_shard(path: Path, tokens: np.ndarray) -> None:
    header = np.zeros(SHARD_HEADER_INTS, dtype="<i4")
    header[:3] = SHARD_MAGIC, SHARD_VERSION, len(tokens)
    with open(path, "wb") as f:
        f.write(header.tobytes())
        f.write(np.asarray(tokens, dtype="<u2").tobytes())


def markov_tokens(count: int, vocab: int, table_seed: int, sample_seed: int) -> np.ndarray:
    """`count` tokens of BOS-led documents from the chain fixed by table_seed."""
    contexts = 4 * vocab
    popularity = 1.0 / np.arange(1, vocab - FIRST_PLAIN_ID + 1) ** ZIPF_EXPONENT
    table = FIRST_PLAIN_ID + np.random.default_rng(table_seed).choice(
        vocab - FIRST_PLAIN_ID, size=(contexts, FANOUT), p=popularity / popularity.sum())
    weights = 1.0 / np.arange(1, FANOUT + 1) ** ZIPF_EXPONENT
    rng = np.random.default_rng(sample_seed)
    docs = -(-count // DOC_LEN)
    out = np.empty((docs, DOC_LEN), dtype=np.uint16)
    out[:, 0] = BOS_ID
    prev2, prev1 = np.full(docs, BOS_ID), rng.integers(FIRST_PLAIN_ID, vocab, size=docs)
    out[:, 1] = prev1
    for j in range(2, DOC_LEN):
        slot = rng.choice(FANOUT, size=docs, p=weights / weights.sum())
        nxt = table[prev1 * 4 + prev2 % 4, slot]
        out[:, j] = nxt
        prev2, prev1 = prev1, nxt
    return out.reshape(-1)[:count]


def make_data(root: Path, tokenizer: Path, train_tokens: int, val_tokens: int, vocab: int) -> None:
    dataset = root / "datasets" / "fineweb10B_sp1024"
    dataset.mkdir(parents=True, exist_ok=True)
    (root / "tokenizers").mkdir(exist_ok=True)
    shutil.copy(tokenizer, root / "tokenizers" / "fineweb_1024_bpe.model")
    half = train_tokens // 2 + 1  # two shards, so the stream crosses a shard boundary
    write_shard(dataset / "fineweb_train_000000.bin", markov_tokens(half, vocab, 0, 1))
    write_shard(dataset / "fineweb_train_000001.bin", markov_tokens(half, vocab, 0, 2))
    write_shard(dataset / "fineweb_val_000000.bin", markov_tokens(val_tokens, vocab, 0, 3))


def run_trainer(name: str, script: Path, work: Path, data: Path, env: dict, timeout_s: float) -> Path:
    """Run one trainer in its own work dir (with `data` linked in); returns its log path."""
    run_dir = work / name
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir(parents=True)
    (run_dir / "data").symlink_to(data.resolve())
    shutil.copy(script, run_dir / "train_gpt.py")
    full_env = {**os.environ, **env, "RUN_ID": name, "PYTHONUNBUFFERED": "1"}
    start = time.perf_counter()
    with open(run_dir / "stdout.txt", "w") as out:
        proc = subprocess.run([sys.executable, "train_gpt.py"], cwd=run_dir, env=full_env, stdout=out,
                              stderr=subprocess.STDOUT, timeout=timeout_s, check=False)
    print(f"{name}: exit {proc.returncode} after {time.perf_counter() - start:.0f} s", flush=True)
    if proc.returncode != 0:
        print((run_dir / "stdout.txt").read_text()[-3000:])
        raise SystemExit(f"{name} failed")
    return run_dir / "logs" / f"{name}.txt"


def summarise(log: Path, batch_tokens: int) -> dict:
    """Speed and losses from a trainer's log. A log cut short (no final validation) is summarised up to
    its last training line, whose time is the host's (not synchronised), and marked incomplete."""
    train, val, result = [], [], {}
    for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
        if m := STEP_TRAIN.match(line):
            train.append((int(m[1]), float(m[2]), float(m[3])))
        elif m := STEP_VAL.match(line):
            val.append((int(m[1]), float(m[2]), float(m[3]), float(m[4])))
        elif m := ROUNDTRIP.match(line):
            result["roundtrip_val_loss"], result["roundtrip_val_bpb"] = float(m[1]), float(m[2])
        elif m := PEAK.match(line):
            result["peak_memory_mib"] = int(m[1])
        elif m := BACKEND.match(line):
            result.setdefault("attention", []).append(m[1])
    complete = bool(val) and val[-1][0] >= train[-1][0]
    # The last validation is synchronised, after the last step; else the last training line.
    steps, time_ms = (val[-1][0], val[-1][3]) if complete else (train[-1][0], train[-1][2])
    mid = next(t for t in train if t[0] >= steps // 4)  # steady state: from a quarter of the way on
    result.update(
        complete=complete,
        steps=steps,
        train_time_ms=time_ms,
        ms_per_step=time_ms / steps,
        tokens_per_s=batch_tokens * steps / (time_ms / 1000.0),
        steady_ms_per_step=(time_ms - mid[2]) / (steps - mid[0]),
        loss_at_last=train[-1][1],
        loss_last_logs_mean=float(np.mean([t[1] for t in train[-LAST_LOGS_AVERAGED:]])),
        loss_second_half_mean=float(np.mean([t[1] for t in train if t[0] > steps // 2])),
        val_loss_at_last=val[-1][1] if complete else None,
        val_bpb_at_last=val[-1][2] if complete else None,
        train_losses={t[0]: t[1] for t in train},
    )
    return result


def profile_ours(data: Path, env: dict, out: Path, steps: int = 4) -> None:
    """Kernel time of a few of our training steps (torch.profiler), by kernel; on CUDA it compiles from
    the cache the timed run left. Writes the table to `out` and prints its top rows."""
    import importlib.util

    import torch
    from torch.profiler import ProfilerActivity, profile

    spec = importlib.util.spec_from_file_location("ours", OURS)
    tg = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tg)
    os.environ.update(env)
    args, cfg = tg._from_env(tg.TrainConfig), tg._from_env(tg.ModelConfig)
    cuda = torch.cuda.is_available()
    device, accum = torch.device("cuda", 0) if cuda else torch.device("cpu"), tg.micro_steps(args, 1)
    with tg.prefer_cudnn_attention():
        model = tg.GPT(cfg).to(device)
        fwd = torch.compile(model, dynamic=False, fullgraph=True) if cuda else model
        muon, adam = tg.build_optimisers(model, args, cuda)
        loader = tg.BatchLoader(str(data / "datasets" / "fineweb10B_sp1024" / "fineweb_train_*.bin"), 0, 1, accum,
                                args.train_batch_tokens, args.train_seq_len, device)

        def step() -> None:
            xs, ys = loader.next_batch()
            for m in range(accum):
                (fwd(xs[m], ys[m]) / accum).backward()
            muon.step()
            adam.step()
            for p in model.parameters():
                p.grad = None

        for _ in range(3):
            step()
        sync = torch.cuda.synchronize if cuda else (lambda: None)
        sync()
        with profile(activities=[ProfilerActivity.CUDA] * cuda + [ProfilerActivity.CPU]) as prof:
            for _ in range(steps):
                step()
            sync()
    table = prof.key_averages().table(sort_by="cuda_time_total" if cuda else "cpu_time_total", row_limit=40,
                                      max_name_column_width=70)
    out.write_text(table)
    print(f"per-step profile ({steps} steps; times are totals):\n" + "\n".join(table.splitlines()[:30]))


def embedded_source_sha256(log: Path) -> str | None:
    """sha256 of the script source a log starts with (the loggers write it first, then 100 '='):
    which version of a trainer produced the numbers."""
    text = log.read_text(encoding="utf-8", errors="replace")
    head, sep, _ = text.partition("\n" + "=" * 100 + "\n")
    return hashlib.sha256(head.encode("utf-8")).hexdigest() if sep else None


def device_name() -> str:
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True, text=True, check=True)
        return out.stdout.strip().splitlines()[0]
    except (OSError, subprocess.CalledProcessError, IndexError):
        return "cpu"


def device_slug(name: str) -> str:
    m = re.search(r"\b([A-Z]\d{2,4})\b", name)
    return m[1].lower() if m else re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", type=Path, help="the challenge's train_gpt.py; omit to time ours only")
    parser.add_argument("--tokenizer", type=Path, help="SentencePiece model (vocab 1024); needed to run")
    parser.add_argument("--from-logs", type=Path, nargs="+", metavar="NAME=LOG",
                        help="summarise existing logs (ours=PATH [baseline=PATH]) instead of running")
    parser.add_argument("--device", help="device name for --from-logs (default: this machine's)")
    parser.add_argument("--note", default="", help="stored in the result: where the logs came from")
    parser.add_argument("--output", help="result file name (default train_step_<device>.json)")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--val-tokens", type=int, default=1 << 20)
    parser.add_argument("--work", type=Path, default=Path("/tmp/pgolf_train_step"))
    parser.add_argument("--out-dir", type=Path, default=REPO / "bench" / "results")
    parser.add_argument("--timeout", type=float, default=400.0, help="seconds per trainer")
    parser.add_argument("--profile-if-under", type=float, default=0.0,
                        help="then profile a few of our steps if fewer seconds than this have passed (CUDA)")
    parser.add_argument("overrides", nargs="*", help="KEY=VALUE for both trainers (e.g. a tiny CPU config)")
    args = parser.parse_args()

    # No wall-clock cap and no warm-down: both scripts would otherwise scale their learning rate by a
    # warm-down estimated from their own speed, and the faster one would train differently.
    env = {"ITERATIONS": str(args.steps), "VAL_LOSS_EVERY": "0", "TRAIN_LOG_EVERY": "10", "SEED": "1337",
           "MAX_WALLCLOCK_SECONDS": "0", "WARMDOWN_ITERS": "0"}
    env.update(kv.split("=", 1) for kv in args.overrides)
    batch_tokens = int(env.get("TRAIN_BATCH_TOKENS", DEFAULT_BATCH_TOKENS))
    vocab = int(env.get("VOCAB_SIZE", 1024))
    t0 = time.perf_counter()
    data = args.work / "data"
    if args.from_logs:
        logs = dict(str(item).split("=", 1) for item in args.from_logs)
        results = {name: summarise(Path(path), batch_tokens) for name, path in logs.items()}
    else:
        if args.tokenizer is None:
            parser.error("--tokenizer is needed to run the trainers")
        train_tokens = (args.steps + 1) * (batch_tokens + 64)
        # The shards depend only on these; a second run in the same --work reuses them.
        data_key = json.dumps({"train": train_tokens, "val": args.val_tokens, "vocab": vocab,
                               "tokenizer_sha256": hashlib.sha256(args.tokenizer.read_bytes()).hexdigest()})
        stamp = data / "data_key.json"
        if not (stamp.is_file() and stamp.read_text() == data_key):
            shutil.rmtree(data, ignore_errors=True)
            make_data(data, args.tokenizer, train_tokens, args.val_tokens, vocab)
            stamp.write_text(data_key)
        print(f"data: {time.perf_counter() - t0:.0f} s", flush=True)
        runs = {"ours": OURS} | ({"baseline": args.baseline} if args.baseline else {})
        logs = {name: run_trainer(name, script, args.work, data, env, args.timeout) for name, script in runs.items()}
        results = {name: summarise(log, batch_tokens) for name, log in logs.items()}
    ours, base = results["ours"], results.get("baseline")
    name = args.device or device_name()
    n = ours["steps"]
    record = {
        "device": name,
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "trainer_source_sha256": {k: embedded_source_sha256(Path(v)) for k, v in logs.items()},
        "config": env,
        "train_batch_tokens": batch_tokens,
        "steps": n,
        "tokens_per_s": ours["tokens_per_s"],
        "ms_per_step": ours["ms_per_step"],
        "steady_ms_per_step": ours["steady_ms_per_step"],
        f"loss_at_{args.steps}": ours["train_losses"].get(args.steps),
        f"loss_at_{n}": ours["train_losses"].get(n),
        "note": args.note,
        "ours": ours,
    }
    if base:
        record.update({
            "baseline_tokens_per_s": base["tokens_per_s"],
            "baseline_ms_per_step": base["ms_per_step"],
            "baseline_steady_ms_per_step": base["steady_ms_per_step"],
            "speedup": ours["tokens_per_s"] / base["tokens_per_s"],
            "steady_speedup": base["steady_ms_per_step"] / ours["steady_ms_per_step"],
            f"baseline_loss_at_{args.steps}": base["train_losses"].get(args.steps),
            f"baseline_loss_at_{n}": base["train_losses"].get(n),
            "baseline": base,
        })
    args.out_dir.mkdir(parents=True, exist_ok=True)
    out = args.out_dir / (args.output or f"train_step_{device_slug(name)}.json")
    out.write_text(json.dumps(record, indent=2) + "\n")
    if not args.from_logs and time.perf_counter() - t0 < args.profile_if_under:
        profile_ours(data, env, args.out_dir / "train_step_profile.txt")

    print(f"\n{out}  ({name}, {n} steps of {batch_tokens} tokens)")
    keys = ("tokens_per_s", "ms_per_step", "steady_ms_per_step", "loss_at_last", "loss_last_logs_mean",
            "loss_second_half_mean", "val_loss_at_last", "roundtrip_val_bpb", "peak_memory_mib")
    print(f"{'':24}" + "".join(f"{k:>14}" for k in results))
    for key in keys:
        print(f"{key:24}" + "".join(f"{r.get(key) if r.get(key) is not None else float('nan'):>14.4f}" for r in results.values()))
    if base:
        print(f"speedup (tokens/s): {record['speedup']:.3f}x  steady: {record['steady_speedup']:.3f}x")
    print(f"bench wall time: {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
