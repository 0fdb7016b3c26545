"""Where one evaluation batch's time goes on the GPU: every kernel of the fused forward in launch order,
the idle time between them, what the host takes to issue them, and the clocks under sustained load.

    PYTHONPATH=. python bench/forward_timeline.py [--gluon] [--batch-windows 256] [--out-dir bench/results]

One batch is `batch_windows` full windows scoring their last `stride` positions, as the evaluator's fast
path runs it: consecutive windows of a random token stream, `stride` apart (so the fused forward shares
block 0's attention across them, fused_model.first_attention_kernel), through bench/fused_model.py's
forward on a baseline-shaped model with random weights. Measured:
- sustained: CUDA-event time per forward over back-to-back forwards (several seconds), with the SM clock,
  power and clock-event reasons sampled by nvidia-smi meanwhile;
- rested: single forwards after a pause (does the GPU run faster before it heats up and hits its power cap?);
- host: the time the host takes to issue one forward (no synchronisation), against the GPU's time;
- timeline: torch.profiler's kernel records of a few forwards: per launch its duration, and the gaps;
- graphed: the same forward replayed from a CUDA graph (harness/cuda_graphs.py), time and equality;
- with --also-per-window: forwards with block 0's attention per window (cuDNN) beside the shared one, and
  block 0's attention alone both ways (median of do_bench, with the kernel at 4 and 8 warps).
Prints tables and writes bench/results/forward_timeline_<device>[_gluon].json. Needs a CUDA GPU.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

import fused_model  # noqa: E402
from baseline_model import BaselineShapedGPT, ModelShape  # noqa: E402
from eval_throughput import device_name, slug  # noqa: E402
from harness import rules  # noqa: E402
from harness.cuda_graphs import GraphedLogits  # noqa: E402

SMI_FIELDS = ("clocks.sm", "power.draw", "temperature.gpu", "clocks_event_reasons.active")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gluon", action="store_true", help="the products as bench/ws_gemm.py's Gluon kernels")
    parser.add_argument("--ws-residual", default=None, choices=("base", "prefetch", "gather", "both"),
                        help="with --gluon: where the residual epilogue's operands come from (ws_gemm.RESIDUAL_OPERANDS; "
                             "ws_gemm.DEFAULT_RESIDUAL_OPERANDS by default)")
    parser.add_argument("--no-graphs", action="store_true", help="skip the CUDA-graph comparison")
    parser.add_argument("--also-without-table", action="store_true",
                        help="also time forwards (rested, sustained) with block 0's product over every row instead of "
                             "fused_model's table by token id")
    parser.add_argument("--also-per-window", action="store_true",
                        help="also time forwards with block 0's attention per window (cuDNN) instead of shared "
                             "across the batch's windows, and block 0's attention alone both ways")
    parser.add_argument("--batch-windows", type=int, default=256)
    parser.add_argument("--sustained-s", type=float, default=8.0, help="seconds of back-to-back forwards")
    parser.add_argument("--out-dir", default=str(ROOT / "bench" / "results"))
    return parser.parse_args()


class SmiSampler:
    """nvidia-smi's readings every 200 ms in a background process, while a `with` block runs."""

    def __init__(self) -> None:
        self.rows: list[list[str]] = []
        self.error = ""

    def __enter__(self) -> "SmiSampler":
        try:
            self.process = subprocess.Popen(
                ["nvidia-smi", f"--query-gpu={','.join(SMI_FIELDS)}", "--format=csv,noheader,nounits", "-lms", "200"],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        except OSError as error:
            self.process, self.error = None, f"nvidia-smi: {error}"
            return self
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        return self

    def _read(self) -> None:
        for line in self.process.stdout:
            self.rows.append([field.strip() for field in line.split(",")])

    def __exit__(self, *exc) -> None:
        if self.process is not None:
            self.process.terminate()
            _, stderr = self.process.communicate(timeout=5)
            self.reader.join(timeout=5)
            if not self.rows:
                self.error = stderr.strip()[:300] or "nvidia-smi printed nothing"

    def summary(self) -> dict:
        numbers = {field: [] for field in SMI_FIELDS[:3]}
        reasons: dict[str, int] = {}
        for row in self.rows:
            if len(row) != len(SMI_FIELDS):
                continue
            for field, value in zip(SMI_FIELDS[:3], row):
                try:
                    numbers[field].append(float(value))
                except ValueError:
                    pass
            reasons[row[3]] = reasons.get(row[3], 0) + 1
        out = {"samples": len(self.rows), "error": self.error, "clock_event_reasons": reasons}
        for field, values in numbers.items():
            if values:
                out[field] = {"min": min(values), "median": statistics.median(values), "max": max(values)}
        return out


def timed_forwards(fn, ids, last_n, count: int) -> list[float]:
    """Milliseconds of each of `count` back-to-back calls, by CUDA events. A sleep kernel first lets the
    host queue the first call's launches before the clock starts (so the host's issue time does not count
    unless the host falls behind the GPU)."""
    events = [torch.cuda.Event(enable_timing=True) for _ in range(count + 1)]
    torch.cuda._sleep(20_000_000)  # ~10 ms of clock cycles
    events[0].record()
    for index in range(count):
        fn(ids, last_n)
        events[index + 1].record()
    torch.cuda.synchronize()
    return [events[i].elapsed_time(events[i + 1]) for i in range(count)]


def kernel_timeline(fn, ids, last_n, forwards: int) -> list[dict]:
    """The profiler's kernel records of `forwards` calls, in start order: name, start and duration (µs)."""
    from torch.profiler import ProfilerActivity, profile

    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(forwards):
            fn(ids, last_n)
        torch.cuda.synchronize()
    kernels = [event for event in prof.events() if event.device_type == torch.autograd.DeviceType.CUDA
               and event.time_range.elapsed_us() > 0 and "Memcpy" not in event.name and "Memset" not in event.name]
    kernels.sort(key=lambda event: event.time_range.start)
    return [{"name": event.name, "start_us": event.time_range.start, "us": event.time_range.elapsed_us()}
            for event in kernels]


def per_forward(timeline: list[dict], forwards: int) -> list[list[dict]]:
    size = len(timeline) // forwards
    return [timeline[i * size:(i + 1) * size] for i in range(forwards)]


def rested_forwards(fn, ids, last_n, pauses: int) -> list[float]:
    """Milliseconds of single forwards, each after a 1.5 s pause."""
    rested = []
    for _ in range(pauses):
        time.sleep(1.5)
        rested += timed_forwards(fn, ids, last_n, 1)
    return rested


def rested_and_sustained(fn, ids, last_n, count: int) -> dict:
    """Median ms of single forwards after a pause, and of `count` back-to-back ones (after a warm-up)."""
    timed_forwards(fn, ids, last_n, 3)
    rested = rested_forwards(fn, ids, last_n, 3)
    sustained = timed_forwards(fn, ids, last_n, count)
    return {"rested_ms": round(statistics.median(rested), 3), "sustained_ms": round(statistics.median(sustained), 3)}


def first_attention_alone(fused, per_window, ids) -> dict:
    """Block 0's attention of one batch: shared across its windows (first_attention_kernel, 4 and 8 warps)
    and per window (first_qkv_kernel, then cuDNN's attention per window); ms (median of do_bench) and how
    far apart the outputs are."""
    from triton.testing import do_bench

    per_window_fn = lambda: per_window._first_attention_per_window(ids)
    want = per_window_fn().float()
    out = {"per_window_ms": round(do_bench(per_window_fn, warmup=25, rep=200, return_mode="median"), 4)}
    default = fused.first_attention_warps
    try:
        for warps in (4, 8):
            fused.first_attention_warps = warps
            got = fused._first_attention(ids).float()
            out[f"shared_{warps}_warps_ms"] = round(do_bench(lambda: fused._first_attention(ids), warmup=25, rep=200,
                                                             return_mode="median"), 4)
            out[f"shared_{warps}_warps_max_abs_diff"] = float((got - want).abs().max())
            out[f"shared_{warps}_warps_rel_diff"] = float((got - want).norm() / want.norm())
    finally:
        fused.first_attention_warps = default
    return out


def timeline_results(fn, ids, last_n, forwards: int = 3) -> dict:
    """Three forwards' kernels: per forward busy/span/idle; the middle one launch by launch."""
    timeline = kernel_timeline(fn, ids, last_n, forwards)
    if not timeline:
        raise RuntimeError("the profiler recorded no kernels")
    groups = per_forward(timeline, forwards)
    summaries = []
    for group in groups:
        busy = sum(k["us"] for k in group)
        span = group[-1]["start_us"] + group[-1]["us"] - group[0]["start_us"]
        summaries.append({"kernels": len(group), "busy_us": round(busy, 1), "span_us": round(span, 1),
                          "idle_us": round(span - busy, 1)})
    middle = groups[1]
    previous_end = middle[0]["start_us"]
    launches, by_name = [], {}
    for kernel in middle:
        launches.append({"name": kernel["name"][:90], "us": round(kernel["us"], 1),
                         "gap_before_us": round(kernel["start_us"] - previous_end, 1)})
        previous_end = kernel["start_us"] + kernel["us"]
        by_name[kernel["name"][:60]] = by_name.get(kernel["name"][:60], 0.0) + kernel["us"]
    return {"timeline_forwards": summaries, "launches": launches,
            "busy_by_kernel_us": {k: round(v, 1) for k, v in sorted(by_name.items(), key=lambda item: -item[1])}}


def graphed_results(fn, ids, last_n, device, count: int) -> dict:
    """The forward from a CUDA graph: equal to the plain call? and its time beside the plain call's."""
    graphed = GraphedLogits(fn, device)
    expected = fn(ids, last_n).clone()
    got = graphed(ids, last_n).clone()
    timed_forwards(graphed, ids, last_n, 3)
    graphed_ms = timed_forwards(graphed, ids, last_n, max(10, count // 2))
    ungraphed_ms = timed_forwards(fn, ids, last_n, max(10, count // 2))
    return {"graphed_equal": bool(torch.equal(expected, got)),
            "graphed_max_abs_diff": float((expected.float() - got.float()).abs().max()),
            "graphed_ms": round(statistics.median(graphed_ms), 3),
            "ungraphed_ms_same_phase": round(statistics.median(ungraphed_ms), 3)}


def main() -> int:
    args = parse_args()
    if not torch.cuda.is_available():
        sys.exit("forward_timeline.py needs a CUDA GPU")
    device = torch.device("cuda")
    torch.manual_seed(0)
    model = BaselineShapedGPT(ModelShape()).to(device=device, dtype=torch.bfloat16)
    gluon_configs, suffix = None, ""
    if args.gluon:
        import ws_gemm

        args.ws_residual = args.ws_residual or ws_gemm.DEFAULT_RESIDUAL_OPERANDS
        gluon_configs = ws_gemm.configs_with(args.ws_residual)
        suffix = "_gluon" + ("" if args.ws_residual == ws_gemm.DEFAULT_RESIDUAL_OPERANDS else f"_{args.ws_residual}")
    fused = fused_model.FusedBaselineGPT(model, gluon_configs=gluon_configs)
    seq_len, last_n = model.eval_seq_len, rules.EVAL_STRIDE
    stride = rules.EVAL_STRIDE
    stream = torch.randint(0, model.vocab_size, ((args.batch_windows - 1) * stride + seq_len,), device=device)
    ids = stream.unfold(0, seq_len, stride).contiguous()  # the evaluator's batches: consecutive windows
    fn = fused.forward_logits
    results: dict = {"device": device_name(device, 1), "torch": torch.__version__, "gluon": args.gluon,
                     "ws_residual": args.ws_residual if args.gluon else None,
                     "batch_windows": args.batch_windows, "seq_len": seq_len, "last_n": last_n,
                     "ids": f"consecutive windows of a random stream, {stride} apart",
                     "consecutive_windows": bool(fused.consecutive_windows(ids))}
    with torch.inference_mode():
        timed_forwards(fn, ids, last_n, 5)  # compile and warm up
        # Host: issue one forward without waiting, after the GPU has drained.
        torch.cuda.synchronize()
        host_ms = []
        for _ in range(5):
            start = time.perf_counter()
            fn(ids, last_n)
            host_ms.append(1e3 * (time.perf_counter() - start))
            torch.cuda.synchronize()
        results["host_issue_ms"] = round(statistics.median(host_ms), 3)
        # Rested: one forward after a pause, a few times.
        rested = rested_forwards(fn, ids, last_n, 4)
        results["rested_ms"] = [round(t, 3) for t in rested]
        # Sustained, with clocks sampled.
        per_call = statistics.median(rested)
        count = max(10, int(args.sustained_s * 1e3 / per_call))
        with SmiSampler() as smi:
            sustained = timed_forwards(fn, ids, last_n, count)
        results["sustained_ms"] = {"count": count, "first": round(sustained[0], 3),
                                   "median": round(statistics.median(sustained), 3),
                                   "last_tenth_median": round(statistics.median(sustained[-max(1, count // 10):]), 3)}
        results["smi_during_sustained"] = smi.summary()
        try:
            results.update(timeline_results(fn, ids, last_n))
        except Exception as error:  # the other measurements still stand
            results["timeline_error"] = f"{type(error).__name__}: {error}"
        if args.also_without_table:
            plain_first = fused_model.FusedBaselineGPT(model, gluon_configs=gluon_configs, first_block_table=False)
            results["without_first_block_table"] = rested_and_sustained(plain_first.forward_logits, ids, last_n, count)
            results["with_first_block_table_again"] = rested_and_sustained(fn, ids, last_n, count)
        if args.also_per_window:
            per_window = fused_model.FusedBaselineGPT(model, gluon_configs=gluon_configs, window_stride=None)
            results["first_attention_alone"] = first_attention_alone(fused, per_window, ids)
            results["per_window_first_attention"] = rested_and_sustained(per_window.forward_logits, ids, last_n, count)
            results["shared_first_attention_again"] = rested_and_sustained(fn, ids, last_n, count)
        try:
            if not args.no_graphs:
                results.update(graphed_results(fn, ids, last_n, device, count))
        except Exception as error:
            results["graphed_error"] = f"{type(error).__name__}: {error}"

    print(f"device {results['device']}, gluon {args.gluon}, batch {args.batch_windows} x {seq_len}, last {last_n}")
    print(f"host issues one forward in {results['host_issue_ms']} ms; rested forwards {results['rested_ms']} ms")
    print(f"sustained: {results['sustained_ms']}; nvidia-smi: {results['smi_during_sustained']}")
    for summary in results.get("timeline_forwards", []):
        print(f"timeline forward: {summary}")
    print(f"{'us':>9} {'gap':>7}  kernel")
    for launch in results.get("launches", []):
        print(f"{launch['us']:9.1f} {launch['gap_before_us']:7.1f}  {launch['name']}")
    for name, us in results.get("busy_by_kernel_us", {}).items():
        print(f"{us:9.1f}  {name}")
    if "graphed_ms" in results:
        print(f"graphed: {results['graphed_ms']} ms vs {results['ungraphed_ms_same_phase']} ms; equal "
              f"{results['graphed_equal']} (max abs diff {results['graphed_max_abs_diff']})")
    for key in ("without_first_block_table", "with_first_block_table_again", "first_attention_alone",
                "per_window_first_attention", "shared_first_attention_again"):
        if key in results:
            print(f"{key}: {results[key]}")
    for key in ("timeline_error", "graphed_error"):
        if key in results:
            print(f"{key}: {results[key]}")
    out = Path(args.out_dir, f"forward_timeline_{slug(results['device'])}{suffix}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
