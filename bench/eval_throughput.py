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

With --model fused the fast path runs the same weights through bench/fused_model.py (Triton kernels
that carry the norms, RoPE, relu² and residual work in the products' epilogues; --tune times their tile
configurations first, --also-plain times the plain compiled model in the same call), while the naive
loops still run the plain model, as records do:

    PYTHONPATH=. python bench/eval_throughput.py --model fused --tune --also-plain --naive-compiled --repeats 2
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import re
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

import trained_weights  # noqa: E402
from baseline_model import BaselineShapedGPT, ModelShape  # noqa: E402
from harness import rules  # noqa: E402
from harness.bytes import ByteTable  # noqa: E402
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
    leaves the tail as it was. (With a fixed short prefix the first timed run of the fused model compiled
    the tail's shapes: 0.1-2.1 s slower than the runs after it on H200s.)"""
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
    parser.add_argument("--model", choices=("bench", "fused", "reference"), default="bench",
                        help="bench/baseline_model.py; the same weights through bench/fused_model.py's Triton kernels "
                             "(the naive loop still runs the plain model, as records do); or reference_train/train_gpt.py's "
                             "GPT (what `harness eval` runs for reference artifacts: fp32 weights cast to bf16 per call), "
                             "all randomly initialised")
    parser.add_argument("--tune", action="store_true",
                        help="with --model fused: time the tile configurations on the device first and keep the fastest")
    parser.add_argument("--gluon", nargs="*", choices=("qkv", "residual", "relu2"), default=None,
                        help="with --model fused: run these kernels (all that have one when given no names) as "
                             "bench/ws_gemm.py's warp-specialised Gluon products (Hopper only)")
    parser.add_argument("--ws-residual", default=None, choices=("base", "prefetch", "gather", "both"),
                        help="with --gluon: where the residual epilogue's operands come from (bench/ws_gemm.py's "
                             "RESIDUAL_OPERANDS: an L2 prefetch at the tile's start, x0 rows from a table by token id; "
                             "ws_gemm.DEFAULT_RESIDUAL_OPERANDS by default)")
    parser.add_argument("--cuda-graphs", action="store_true",
                        help="replay the fast path's batches from a CUDA graph (harness/cuda_graphs.py); also times it "
                             "without graphs in the same call and compares the two scores")
    parser.add_argument("--also-plain", action="store_true",
                        help="with --model fused: also time the fast path on the plain compiled model (same weights) "
                             "and compare the two scores")
    parser.add_argument("--also-per-window", action="store_true",
                        help="with --model fused: also time it with block 0's attention per window (cuDNN) instead of "
                             "shared across each batch's consecutive windows (fused_model.first_attention_kernel)")
    parser.add_argument("--attention", default="last", choices=("last", "all", "sdpa"),
                        help="with --model fused: fused_model.attention_kernel for the last block's scored queries "
                             "(default), for every block's attention, or none (SDPA everywhere)")
    parser.add_argument("--attention-tiles", default=None, metavar="BQ,BK,STACK,WARPS,STAGES|best:PATH",
                        help="attention_kernel's tiles (default fused_model.ATTENTION_TILES), or the fastest of a "
                             "bench/attention_speed.py result for the queries the kernel takes (the last block's, or "
                             "full windows with --attention all)")
    parser.add_argument("--also-sdpa", action="store_true",
                        help="with --model fused: also time it with SDPA's attention (cuDNN) everywhere in the same "
                             "call and compare the two scores")
    parser.add_argument("--matrices-bf16", action="store_true",
                        help="with --model reference: store the projection matrices in bf16 once instead of casting "
                             "the fp32 weights per call (the same values; measured on H100: no faster)")
    parser.add_argument("--train-steps", type=int, default=0,
                        help="with --model bench or fused: first train the model for this many Adam steps on "
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


def attention_tiles_from(text: str, queries: int) -> fused_model.AttentionConfig:
    """--attention-tiles: five numbers, or best:PATH, attention_speed.py's fastest tiles for `queries` a window."""
    import fused_model  # (main imported it: --attention-tiles needs --model fused)

    if text.startswith("best:"):
        path = Path(text.removeprefix("best:"))
        try:
            best = json.loads(path.read_text())["best"][f"queries_{queries}"]
            return fused_model.AttentionConfig(best["block_q"], best["block_k"], best["stack"], best["num_warps"],
                                               best["num_stages"], tma=best.get("tma", False))
        except (OSError, ValueError, KeyError, TypeError) as error:
            sys.exit(f"eval_throughput.py: --attention-tiles {text}: no fastest tiles for {queries} queries in {path} "
                     f"({error})")
    try:
        numbers = [int(part) for part in text.split(",")]
        if len(numbers) != 5:
            raise ValueError(f"{len(numbers)} numbers, not 5")
        return fused_model.AttentionConfig(*numbers)
    except ValueError as error:
        sys.exit(f"eval_throughput.py: --attention-tiles {text}: {error} (BQ,BK,STACK,WARPS,STAGES or best:PATH)")


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


def compare_with_fp32(model, fast_fn, logits_fn, prefix, table, fast_args, common, args,
                      plain_args: dict | None = None) -> dict:
    """Score a prefix with the fast path, the naive loop (both as timed) and the naive loop on an fp32
    copy of the same weights: how far each bf16 path is from the higher-precision number. With
    `plain_args` (the fused model's runs) the plain compiled fast path is scored on the prefix too."""
    fast = evaluate(fast_fn, prefix, table, **fast_args)
    naive = evaluate_naive(logits_fn, prefix, table, batch_windows=args.naive_batch_windows, **common)
    plain = evaluate(logits_fn, prefix, table, **plain_args) if plain_args is not None else None
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
    if plain is not None:
        comparison["plain_rel_diff"] = abs(plain.val_loss - exact.val_loss) / exact.val_loss
        comparison["fast_vs_plain_rel_diff"] = abs(fast.val_loss - plain.val_loss) / plain.val_loss
    return comparison


def compared_runs(name: str, runs: list, fast, fast_wall_s: float, scale: float) -> dict:
    """Another fast-path variant's timed runs against the fast path's: its times, seconds per split, the
    fast path's speedup over it and how far the two scores are apart (keys named after `name`)."""
    wall_s = statistics.median(r.wall_s for r in runs)
    return {
        f"{name}_fast_wall_s": [round(r.wall_s, 3) for r in runs],
        f"{name}_seconds_per_split": round(wall_s * scale, 2),
        f"speedup_vs_{name}": round(wall_s / fast_wall_s, 3),
        f"val_loss_{name}": runs[0].val_loss,
        f"max_rel_diff_vs_{name}": max_rel_diff((fast.val_loss, fast.val_bpb), (runs[0].val_loss, runs[0].val_bpb)),
    }


def main() -> int:
    args = parse_args()
    if args.model == "fused":  # Triton is needed for this model only
        try:
            import fused_model
        except ImportError as error:
            sys.exit(f"eval_throughput.py: --model fused needs Triton ({error}); `pip install -e .[test]` or a "
                     "CUDA build of torch brings it")
    # One process, or one per GPU under torchrun (NCCL on CUDA, gloo on CPU).
    name, rank, world_size = join_process_group("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if args.gluon is not None and (args.model != "fused" or device.type != "cuda"
                                   or torch.cuda.get_device_capability(device)[0] != 9):
        sys.exit(f"eval_throughput.py: --gluon runs bench/ws_gemm.py's kernels in --model fused on a Hopper GPU "
                 f"(sm_90) only; here --model {args.model} on {device_name(device, world_size)}")
    if (args.also_per_window or args.also_plain or args.also_sdpa or args.attention_tiles) and args.model != "fused":
        sys.exit("eval_throughput.py: --also-per-window, --also-plain, --also-sdpa and --attention-tiles are variants "
                 "of --model fused")
    if args.also_sdpa and args.attention == "sdpa":
        sys.exit("eval_throughput.py: --also-sdpa compares attention_kernel with SDPA; --attention sdpa has no kernel")
    attention_tiles = None
    if args.model == "fused" and args.attention != "sdpa":
        queries = args.seq_len if args.attention == "all" else args.stride  # what the tiles were chosen for
        attention_tiles = replace(attention_tiles_from(args.attention_tiles, queries) if args.attention_tiles
                                  else fused_model.ATTENTION_TILES, full_windows=args.attention == "all")
    if (args.train_steps < 0 or args.train_batch_windows < 1 or not args.train_lr > 0
            or (args.train_steps and args.model == "reference")):
        sys.exit("eval_throughput.py: --train-steps takes a count of steps >= 0, --train-batch-windows one >= 1 and "
                 "--train-lr a rate > 0, for --model bench or fused")
    if args.cuda_graphs and device.type != "cuda":
        sys.exit(f"eval_throughput.py: --cuda-graphs needs a CUDA device; here {device_name(device, world_size)}")
    if args.model == "fused" and device.type != "cuda" and os.environ.get("TRITON_INTERPRET") != "1":
        sys.exit("eval_throughput.py: --model fused runs Triton kernels: on a CUDA device, or on the CPU under "
                 "TRITON_INTERPRET=1 (with --small)")
    shape = ModelShape(seq_len=args.seq_len, fused_qkv=not args.separate_qkv)
    if args.small:
        width = dict(model_dim=64, num_heads=4, num_kv_heads=2)
        if args.model == "fused":  # the kernels' smallest tiles: width 128, heads of 64
            width = fused_model.SMALL_MODEL_SHAPE
        shape = ModelShape(vocab_size=64, num_layers=2, seq_len=args.seq_len, fused_qkv=not args.separate_qkv, **width)
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
    logits_fn = model.forward_logits  # what the naive loops run: the plain model
    fast_fn, tuning, fused = logits_fn, None, None
    gluon_suffix = ""  # of the results file: the Gluon kernels, and a residual operand option not the default
    if args.model == "fused":
        gluon_configs = None
        if args.gluon is not None:
            import ws_gemm

            args.ws_residual = args.ws_residual or ws_gemm.DEFAULT_RESIDUAL_OPERANDS
            gluon_configs = ws_gemm.configs_with(args.ws_residual, args.gluon or None)
            gluon_suffix = "_gluon_" + "_".join(sorted(args.gluon or ("qkv", "relu2", "residual")))
            if args.ws_residual != ws_gemm.DEFAULT_RESIDUAL_OPERANDS and "residual" in gluon_configs:
                gluon_suffix += f"_{args.ws_residual}"
        # Block 0's attention shared across each batch's windows where the stride allows (the kernel's tiles)
        window_stride = args.stride if fused_model.shares_first_attention_at(args.stride) else None
        fused_configs = fused_model.SMALL_MODEL_CONFIGS if args.small else None
        fused = fused_model.FusedBaselineGPT(model, fused_configs, gluon_configs=gluon_configs,
                                             window_stride=window_stride, attention=attention_tiles)
        if args.attention != "last":  # (the default's results keep their name)
            gluon_suffix += f"_attention_{args.attention}"
        if args.tune and device.type == "cuda":
            tuning = fused_model.tune(fused, args.batch_windows, fused_model.tune_candidates())
        elif args.tune:
            print("--tune times kernels on a CUDA device; on the CPU the default tiles stay")
        fast_fn = fused.forward_logits
    plan = WindowPlan(len(stream), args.seq_len, args.stride)
    batch_tokens = args.batch_windows * args.seq_len
    say = print if rank == 0 else (lambda *a, **k: None)
    say(f"device: {device_name(device, world_size)}; torch {torch.__version__}; stream {len(stream):,} tokens, "
        f"{plan.num_windows:,} windows of {args.seq_len} (stride {args.stride}), batch {args.batch_windows}")

    compile_mode = True if args.compile_mode == "default" else args.compile_mode
    common = dict(seq_len=args.seq_len, stride=args.stride, device=device)
    plain_args = dict(common, batch_tokens=batch_tokens, compile=compile_mode)
    # The fused kernels are compiled by Triton; torch.compile has nothing left to fuse around them.
    fast_args = dict(plain_args, compile=False) if fused is not None else plain_args
    if args.cuda_graphs:  # (a CUDA device: checked above)
        ungraphed_args, fast_args = fast_args, dict(fast_args, cuda_graphs=True)
    warmup_tokens = warmup_length(len(stream), args.seq_len, args.stride, args.batch_windows)

    def timed_fast_runs(fn, run_args, label):
        start = time.perf_counter()
        evaluate(fn, stream[:warmup_tokens], table, **run_args)
        synchronize(device)
        warmup_s = time.perf_counter() - start
        say(f"{label}: compile + warm-up: {warmup_s:.1f} s")
        runs = []
        for repeat in range(args.repeats):
            runs.append(evaluate(fn, stream, table, **run_args))
            say(f"{label} run {repeat + 1}: {runs[-1].wall_s:.2f} s, val_loss {runs[-1].val_loss:.8f}")
        return runs, warmup_s

    fast_runs, compile_s = timed_fast_runs(fast_fn, fast_args, f"fast path ({args.model} model)")
    fast = fast_runs[0]  # every run scores the same tokens; only the time differs
    fast_wall_s = statistics.median(r.wall_s for r in fast_runs)
    ungraphed_runs = None
    if args.cuda_graphs:
        ungraphed_runs, _ = timed_fast_runs(fast_fn, ungraphed_args, f"fast path ({args.model} model, no graphs)")
    per_window_runs = None
    if fused is not None and args.also_per_window:
        per_window = fused_model.FusedBaselineGPT(model, fused.configs, gluon_configs=fused.gluon_configs,
                                                  window_stride=None, attention=fused.attention_config)
        per_window_runs, _ = timed_fast_runs(per_window.forward_logits, fast_args,
                                             "fast path (fused model, block 0's attention per window)")
        del per_window
    sdpa_runs = None
    if fused is not None and args.also_sdpa:
        with_sdpa = fused_model.FusedBaselineGPT(model, fused.configs, gluon_configs=fused.gluon_configs,
                                                 window_stride=fused.window_stride, attention=None)
        sdpa_runs, _ = timed_fast_runs(with_sdpa.forward_logits, fast_args, "fast path (fused model, SDPA attention)")
        del with_sdpa
    plain_runs = None
    if fused is not None and args.also_plain:
        plain_runs, _ = timed_fast_runs(logits_fn, plain_args, "fast path (plain model, compiled)")
    kernels = []
    if args.profile and device.type == "cuda" and rank == 0:
        kernels = profile_kernels(lambda: evaluate(fast_fn, stream[:warmup_tokens], table, **fast_args))
        for name, share in kernels[:25]:
            say(f"  {100 * share:5.1f}%  {name[:110]}")
    eager = None
    if args.eager_too:
        eager = evaluate(logits_fn, stream, table, **dict(plain_args, compile=False))
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
        reference = compare_with_fp32(model, fast_fn, logits_fn, stream[: args.reference_tokens], table, fast_args,
                                      common, args, plain_args if fused is not None else None)
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
        "compile_mode": "none (Triton kernels)" if fused is not None else args.compile_mode,
        "cuda_graphs": args.cuda_graphs,
        "model_source": args.model, "matrices_bf16": args.matrices_bf16,
        "attention_kernels": [name for name, _ in kernels if re.search(r"attn|attention|fmha|flash|sdpa", name, re.I)][:4],
        "top_kernels": [[name[:120], round(share, 4)] for name, share in kernels[:12]],
        "val_loss_fast": fast.val_loss, "val_bpb_fast": fast.val_bpb,
    }
    if args.train_steps:
        results["training"] = training.to_dict()
        results["stream"] = "held-out documents of bench/trained_weights.py's Markov chain"
    if fused is not None:
        results["fused_tile_configs"] = {name: config.__dict__ for name, config in fused.configs.items()
                                         if name not in fused.gluon_configs}
        results["gluon_configs"] = {name: config.__dict__ for name, config in fused.gluon_configs.items()}
        results["ws_residual"] = args.ws_residual
        results["first_attention"] = ("shared across each batch's windows" if fused.window_stride else "per window")
        results["attention"] = ("SDPA" if fused.attention_config is None else
                                {"attention_kernel": fused.attention_config.__dict__, "from": args.attention_tiles})
        if tuning is not None:
            results["fused_tuning_ms"] = tuning
    for name, runs in (("without_graphs", ungraphed_runs), ("per_window_first_attention", per_window_runs),
                       ("sdpa_attention", sdpa_runs), ("plain_model", plain_runs)):
        if runs is not None:
            results.update(compared_runs(name, runs, fast, fast_wall_s, scale))
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
        suffix += gluon_suffix
        if args.cuda_graphs:
            suffix += "_graphs"
        if args.train_steps:
            suffix += "_trained"
        out = Path(args.out_dir, f"eval_throughput_{slug(results['device'])}{suffix}.json")
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(results, indent=2) + "\n")
        print(f"wrote {out}")
        for key in ("device", "seconds_per_split", "tokens_per_s", "tflops", "tflops_executed",
                    "without_graphs_seconds_per_split", "speedup_vs_without_graphs", "max_rel_diff_vs_without_graphs",
                    "plain_model_seconds_per_split", "speedup_vs_plain_model", "max_rel_diff_vs_plain_model",
                    "eager_seconds_per_split", "naive_seconds_per_split", "speedup_vs_naive", "max_rel_diff",
                    "naive_compiled_seconds_per_split", "speedup_vs_compiled_naive", "max_rel_diff_vs_compiled_naive",
                    "fp32_reference", "training", "attention_kernels"):
            if key in results:
                print(f"{key:>24}: {results[key]}")
    leave_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
