"""Throughput of the trusted evaluator against the straightforward loop, on a baseline-shaped model.

    PYTHONPATH=. python bench/eval_throughput.py [--tokens N] [--out-dir DIR]
    PYTHONPATH=. torchrun --nproc_per_node K bench/eval_throughput.py   # windows split across K GPUs

A model of the baseline's shape (bench/baseline_model.py, random bf16 weights) scores a synthetic stream
with stride-64 sliding windows twice: through `harness.evaluator.evaluate` (batched windows gathered on
the device, output head and last block only for scored positions, cuDNN attention first,
torch.compile) and through `evaluate_naive` on the GPU (the per-window batched loop with full logits
everywhere, eager; with --naive-compiled also through torch.compile, as many records' own evaluators
do, which also compares the two scores under one compiler). It reports tokens/s, seconds per validation split
(62,021,632 tokens, scaled linearly from the stream measured), FLOP rates and the two results'
relative difference, and writes bench/results/eval_throughput_<device>.json. Compilation happens on a
short warm-up prefix that ends as the stream does (every batch shape compiled before the timed runs)
and is reported apart from them. With --train-steps N the weights are first trained for N steps on a
synthetic Markov chain and a held-out stream of it is scored (bench/trained_weights.py: a trained
model's loss, about 2.2 nats, where random weights score 19.9); --reference-tokens also scores a
prefix on an fp32 copy of the weights, to see how far each bf16 path is from it.
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import re
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

import trained_weights  # noqa: E402
from baseline_model import BaselineShapedGPT, ModelShape  # noqa: E402
from harness import rules  # noqa: E402
from harness.data.bytes import ByteTable  # noqa: E402
from harness.evaluator import (WindowPlan, evaluate, evaluate_naive, join_process_group,  # noqa: E402
                               leave_process_group)

SPLIT_TOKENS = min(rules.KNOWN_VAL_TOKEN_COUNTS)  # 62,021,632: the sp1024 split most records log


def max_rel_diff(got: tuple[float, float], want: tuple[float, float]) -> float:
    """The larger relative difference of (val_loss, val_bpb) pairs."""
    return max(abs(g - w) / abs(w) for g, w in zip(got, want))


def warmup_length(num_tokens: int, seq_len: int, stride: int, batch_windows: int) -> int:
    """How much of the stream the untimed warm-up scores: the shortest prefix of at least three full
    batches whose windows end the way the whole stream's do (the same last, partial batch of regular
    windows and the same shorter last window), so that every shape the timed runs meet is compiled
    before them. Dropping batch_windows * stride tokens drops exactly one batch of regular windows and
    leaves the tail as it was. (With a fixed short prefix the first timed run compiled the tail's shapes:
    0.1-2.1 s slower than the runs after it on H200s.)"""
    step = batch_windows * stride
    minimum = seq_len + 3 * step + 7
    if num_tokens <= minimum:
        return num_tokens
    return num_tokens - (num_tokens - minimum) // step * step


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tokens", type=int, default=SPLIT_TOKENS // 10, help="synthetic stream length")
    parser.add_argument("--seq-len", type=int, default=rules.DEFAULT_SEQ_LEN)
    parser.add_argument("--stride", type=int, default=rules.EVAL_STRIDE)
    parser.add_argument("--batch-windows", type=int, default=256, help="windows per batch, fast path")
    parser.add_argument("--naive-batch-windows", type=int, default=128, help="windows per batch, naive loop")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of the fast path (median reported)")
    parser.add_argument("--no-naive", action="store_true", help="skip the naive loop (default under torchrun)")
    parser.add_argument("--naive-compiled", action="store_true",
                        help="also time the naive loop through torch.compile (how public records run it) and compare "
                             "its score with the fast path's: the same compiler, so the same bf16 rounding")
    parser.add_argument("--eager-too", action="store_true", help="also time the fast path without torch.compile")
    parser.add_argument("--compile-mode", default="default", help="torch.compile mode for the fast path")
    parser.add_argument("--separate-qkv", action="store_true", help="three q/k/v projections instead of one")
    parser.add_argument("--reference-tokens", type=int, default=0,
                        help="also score this prefix with an fp32 copy of the model (naive) and compare both paths")
    parser.add_argument("--profile", action="store_true", help="print the top GPU kernels of a few fast batches")
    parser.add_argument("--model", choices=("bench", "reference"), default="bench",
                        help="bench/baseline_model.py, or reference_train/train_gpt.py's GPT (what `harness eval` "
                             "runs for reference artifacts: fp32 weights cast to bf16 per call), both randomly initialised")
    parser.add_argument("--matrices-bf16", action="store_true",
                        help="with --model reference: store the projection matrices in bf16 once instead of casting "
                             "the fp32 weights per call (the same values; measured on H100: no faster)")
    parser.add_argument("--train-steps", type=int, default=0,
                        help="with --model bench: first train the model for this many Adam steps on "
                             "bench/trained_weights.py's Markov chain and score a held-out stream from the same "
                             "chain (a trained model's loss, about 2.2 nats, instead of random weights' 19.9)")
    parser.add_argument("--train-batch-windows", type=int, default=64, help="windows per training step")
    parser.add_argument("--train-lr", type=float, default=2e-3, help="peak Adam learning rate of the training")
    parser.add_argument("--small", action="store_true", help="a tiny model and fp32 (CPU debugging)")
    parser.add_argument("--out-dir", default=str(ROOT / "bench" / "results"))
    return parser.parse_args()


def synthetic_inputs(tokens: int, vocab: int, seed: int = 0) -> tuple[np.ndarray, ByteTable]:
    """A random stream with BOS sprinkled in, and a byte table shaped like a real one (boundary ids
    0-3 with 0 bytes, byte-fallback-like ids of 1 byte, pieces of 1-8 bytes, half with a space)."""
    rng = np.random.default_rng(seed)
    stream = rng.integers(0, vocab, size=tokens).astype(np.uint16)
    stream[rng.random(tokens) < 0.002] = rules.BOS_ID
    base = rng.integers(1, 9, size=vocab)
    space = rng.random(vocab) < 0.5
    boundary = np.zeros(vocab, dtype=bool)
    boundary[[rules.PAD_ID, rules.BOS_ID, rules.EOS_ID, rules.UNK_ID]] = True
    base[boundary], space[boundary] = 0, False
    return stream, ByteTable(base_bytes=base.astype(np.int16), has_leading_space=space, is_boundary=boundary)


def device_name(device: torch.device, world_size: int) -> str:
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu"
    return f"{name} x{world_size}" if world_size > 1 else name


def slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def profile_kernels(run) -> list[tuple[str, float]]:
    """(kernel name, share of GPU time) of everything `run()` launches, largest first."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        run()
        torch.cuda.synchronize()
    events = [(e.key, e.self_device_time_total) for e in prof.key_averages() if e.self_device_time_total > 0]
    total = sum(t for _, t in events) or 1.0
    return [(name, t / total) for name, t in sorted(events, key=lambda item: -item[1])]


def reference_model(shape: ModelShape, device: torch.device) -> torch.nn.Module:
    """The reference trainer's GPT at this shape with random weights everywhere (its zero-initialised
    projections too: zeros would time faster than a trained model runs)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("reference_train_gpt", ROOT / "reference_train" / "train_gpt.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look the module up by name
    spec.loader.exec_module(module)
    config = module.ModelConfig(vocab_size=shape.vocab_size, num_layers=shape.num_layers, model_dim=shape.model_dim,
                                num_heads=shape.num_heads, num_kv_heads=shape.num_kv_heads, mlp_mult=shape.mlp_mult,
                                train_seq_len=shape.seq_len)
    torch.manual_seed(0)
    model = module.GPT(config)
    with torch.no_grad():
        for param in model.parameters():
            if param.ndim == 2:
                param.normal_(0.0, param.shape[1] ** -0.5)
    return model.to(device).eval()


def compare_with_fp32(model, logits_fn, prefix, table, fast_args, common, args) -> dict:
    """Score a prefix with the fast path, the naive loop (both as timed) and the naive loop on an fp32
    copy of the same weights: how far each bf16 path is from the higher-precision number."""
    fast = evaluate(logits_fn, prefix, table, **fast_args)
    naive = evaluate_naive(logits_fn, prefix, table, batch_windows=args.naive_batch_windows, **common)
    exact_model = copy.deepcopy(model).float()
    matmul_precision = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("highest")  # true fp32 products, no TF32
    try:
        exact = evaluate_naive(exact_model.forward_logits, prefix, table, batch_windows=args.naive_batch_windows, **common)
        exact_fast = evaluate(exact_model.forward_logits, prefix, table, **dict(fast_args, compile=False))
    finally:
        torch.set_float32_matmul_precision(matmul_precision)
    comparison = {
        "tokens": len(prefix), "val_loss_fp32": exact.val_loss,
        "fast_rel_diff": abs(fast.val_loss - exact.val_loss) / exact.val_loss,
        "naive_rel_diff": abs(naive.val_loss - exact.val_loss) / exact.val_loss,
        "fast_vs_naive_rel_diff": abs(fast.val_loss - naive.val_loss) / naive.val_loss,
        # Both paths on the fp32 copy: what is left is the evaluator's own arithmetic, not bf16's.
        "fp32_fast_vs_naive_rel_diff": abs(exact_fast.val_loss - exact.val_loss) / exact.val_loss,
    }
    return comparison


def main() -> int:
    args = parse_args()
    # One process, or one per GPU under torchrun (NCCL on CUDA, gloo on CPU).
    name, rank, world_size = join_process_group("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if (args.train_steps < 0 or args.train_batch_windows < 1 or not args.train_lr > 0
            or (args.train_steps and args.model == "reference")):
        sys.exit("eval_throughput.py: --train-steps takes a count of steps >= 0, --train-batch-windows one >= 1 and "
                 "--train-lr a rate > 0, for --model bench")
    shape = ModelShape(seq_len=args.seq_len, fused_qkv=not args.separate_qkv)
    if args.small:
        shape = ModelShape(vocab_size=64, num_layers=2, model_dim=64, num_heads=4, num_kv_heads=2,
                           seq_len=args.seq_len, fused_qkv=not args.separate_qkv)
    dtype = torch.float32 if args.small else torch.bfloat16
    if args.model == "reference":
        model, dtype = reference_model(shape, device), torch.float32
        if args.matrices_bf16:
            for module in model.modules():
                if type(module).__name__ == "Linear":
                    module.weight.data = module.weight.data.to(torch.bfloat16)
    elif args.train_steps:
        model = BaselineShapedGPT(shape).to(device=device)
        training = trained_weights.train_briefly(model, args.train_steps, args.train_batch_windows, args.train_lr,
                                                 log=print if rank == 0 else None)
        model = model.to(dtype)
    else:
        model = BaselineShapedGPT(shape).to(device=device, dtype=dtype)
    stream, table = synthetic_inputs(args.tokens, shape.vocab_size)
    if args.train_steps:  # held-out text of the chain the model learnt (the byte table stays synthetic)
        stream = trained_weights.markov_stream(args.tokens, shape.vocab_size)
    logits_fn = model.forward_logits
    plan = WindowPlan(len(stream), args.seq_len, args.stride)
    batch_tokens = args.batch_windows * args.seq_len
    say = print if rank == 0 else (lambda *a, **k: None)
    say(f"device: {device_name(device, world_size)}; torch {torch.__version__}; stream {len(stream):,} tokens, "
        f"{plan.num_windows:,} windows of {args.seq_len} (stride {args.stride}), batch {args.batch_windows}")

    compile_mode = True if args.compile_mode == "default" else args.compile_mode
    common = dict(seq_len=args.seq_len, stride=args.stride, device=device)
    fast_args = dict(common, batch_tokens=batch_tokens, compile=compile_mode)
    warmup_tokens = warmup_length(len(stream), args.seq_len, args.stride, args.batch_windows)

    start = time.perf_counter()
    evaluate(logits_fn, stream[:warmup_tokens], table, **fast_args)
    synchronize(device)
    compile_s = time.perf_counter() - start
    say(f"fast path ({args.model} model): compile + warm-up: {compile_s:.1f} s")
    fast_runs = []
    for repeat in range(args.repeats):
        fast_runs.append(evaluate(logits_fn, stream, table, **fast_args))
        say(f"fast path run {repeat + 1}: {fast_runs[-1].wall_s:.2f} s, val_loss {fast_runs[-1].val_loss:.8f}")
    fast = fast_runs[0]  # every run scores the same tokens; only the time differs
    fast_wall_s = statistics.median(r.wall_s for r in fast_runs)
    kernels = []
    if args.profile and device.type == "cuda" and rank == 0:
        kernels = profile_kernels(lambda: evaluate(logits_fn, stream[:warmup_tokens], table, **fast_args))
        for name, share in kernels[:25]:
            say(f"  {100 * share:5.1f}%  {name[:110]}")
    eager = None
    if args.eager_too:
        eager = evaluate(logits_fn, stream, table, **dict(fast_args, compile=False))
        say(f"fast path without compile: {eager.wall_s:.2f} s, val_loss {eager.val_loss:.8f}")
    naive = None
    if not args.no_naive and world_size == 1:
        naive = evaluate_naive(logits_fn, stream, table, batch_windows=args.naive_batch_windows, **common)
        say(f"naive loop: {naive.wall_s:.2f} s, val_loss {naive.val_loss:.8f}")
    naive_compiled = None
    if args.naive_compiled and world_size == 1:
        # The loop's last batches are smaller (one compile each): a whole untimed pass compiles every shape.
        compiled_fn = torch.compile(logits_fn, dynamic=False)
        evaluate_naive(compiled_fn, stream, table, batch_windows=args.naive_batch_windows, **common)
        naive_compiled = evaluate_naive(compiled_fn, stream, table, batch_windows=args.naive_batch_windows, **common)
        say(f"naive loop, compiled (second pass): {naive_compiled.wall_s:.2f} s, val_loss {naive_compiled.val_loss:.8f}")
    reference = None
    if args.reference_tokens and world_size == 1:
        reference = compare_with_fp32(model, logits_fn, stream[: args.reference_tokens], table, fast_args, common, args)
        say(f"fp32 reference on {args.reference_tokens:,} tokens: {reference}")

    scale = (SPLIT_TOKENS - 1) / fast.tokens
    flops_equivalent = plan.num_windows * shape.flops_per_window(args.seq_len, args.stride, False)
    flops_executed = plan.num_windows * shape.flops_per_window(args.seq_len, args.stride, True)
    results = {
        "device": device_name(device, world_size),
        "world_size": world_size,
        "torch": torch.__version__,
        "model": {**shape.__dict__, "dtype": str(dtype).removeprefix("torch."),
                  "weights": "trained (bench/trained_weights.py)" if args.train_steps else "random"},
        "stream_tokens": len(stream),
        "windows": plan.num_windows,
        "seq_len": args.seq_len, "stride": args.stride, "batch_windows": args.batch_windows,
        "split_tokens": SPLIT_TOKENS,
        "scaling": f"seconds measured on {len(stream):,} tokens, scaled by {scale:.3f} to the split",
        "compile_s": round(compile_s, 2),
        "fast_wall_s": [round(r.wall_s, 3) for r in fast_runs],
        "seconds_per_split": round(fast_wall_s * scale, 2),
        "tokens_per_s": round(fast.tokens / fast_wall_s),
        "tflops": round(flops_equivalent / fast_wall_s / 1e12, 1),
        "tflops_executed": round(flops_executed / fast_wall_s / 1e12, 1),
        "flop_count": "tflops: FLOPs of a full forward of every window (causal attention counted half, "
                      "output head on scored positions) over the time; tflops_executed: the FLOPs the fast "
                      "path actually runs (last block only for scored queries)",
        "compile_mode": args.compile_mode,
        "model_source": args.model, "matrices_bf16": args.matrices_bf16,
        "attention_kernels": [name for name, _ in kernels if re.search(r"attn|attention|fmha|flash|sdpa", name, re.I)][:4],
        "top_kernels": [[name[:120], round(share, 4)] for name, share in kernels[:12]],
        "val_loss_fast": fast.val_loss, "val_bpb_fast": fast.val_bpb,
    }
    if args.train_steps:
        results["training"] = training.to_dict()
        results["stream"] = "held-out documents of bench/trained_weights.py's Markov chain"
    if eager is not None:
        results["eager_seconds_per_split"] = round(eager.wall_s * scale, 2)
        results["val_loss_eager"] = eager.val_loss
    if reference is not None:
        results["fp32_reference"] = reference
    if naive is not None:
        results.update({
            "naive_batch_windows": args.naive_batch_windows,
            "naive_wall_s": round(naive.wall_s, 3),
            "naive_seconds_per_split": round(naive.wall_s * scale, 2),
            "naive_tflops": round(flops_equivalent / naive.wall_s / 1e12, 1),
            "speedup_vs_naive": round(naive.wall_s / fast_wall_s, 2),
            "val_loss_naive": naive.val_loss, "val_bpb_naive": naive.val_bpb,
            "max_rel_diff": max_rel_diff((fast.val_loss, fast.val_bpb), (naive.val_loss, naive.val_bpb)),
        })
    if naive_compiled is not None:
        results.update({
            "naive_compiled_seconds_per_split": round(naive_compiled.wall_s * scale, 2),
            "speedup_vs_compiled_naive": round(naive_compiled.wall_s / fast_wall_s, 2),
            "val_loss_naive_compiled": naive_compiled.val_loss,
            # Same compiler on both sides: what is left is the evaluator's own arithmetic (and GEMM tile order).
            "max_rel_diff_vs_compiled_naive": max_rel_diff((fast.val_loss, fast.val_bpb),
                                                           (naive_compiled.val_loss, naive_compiled.val_bpb)),
        })
    if rank == 0:
        suffix = ("" if args.model == "bench" else f"_{args.model}_model") + ("_bf16_matrices" if args.matrices_bf16 else "")
        if args.train_steps:
            suffix += "_trained"
        out = Path(args.out_dir, f"eval_throughput_{slug(results['device'])}{suffix}.json")
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(results, indent=2) + "\n")
        print(f"wrote {out}")
        for key in ("device", "seconds_per_split", "tokens_per_s", "tflops", "tflops_executed",
                    "eager_seconds_per_split", "naive_seconds_per_split", "speedup_vs_naive", "max_rel_diff",
                    "naive_compiled_seconds_per_split", "speedup_vs_compiled_naive", "max_rel_diff_vs_compiled_naive",
                    "fp32_reference", "training", "attention_kernels"):
            if key in results:
                print(f"{key:>24}: {results[key]}")
    leave_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
