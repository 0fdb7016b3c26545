"""Multi-process evaluation (gloo, 2 processes on CPU) gives the single-process result to 1e-9 relative,
on every rank, including a split where one rank holds only the first window."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch.distributed as dist
import torch.multiprocessing as mp

from harness.evaluator import evaluate
from evaluator_models import TinyTransformer, byte_table, logits_fn, random_stream

TESTS_DIR = str(Path(__file__).resolve().parent)
# (stream length, seq_len, stride): many windows with a short final one; 3 windows, so rank 0 holds
# only window 0 (irregular) and rank 1 the rest.
CASES = [(1 + 16 + 23 * 5 + 2, 16, 5), (1 + 16 + 2 * 5, 16, 5)]


def _worker(rank: int, world_size: int, init_file: str, out_dir: str) -> None:
    sys.path.insert(0, TESTS_DIR)  # spawned children start fresh: make the helper models importable
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world_size)
    try:
        results = []
        for length, seq_len, stride in CASES:
            result = evaluate(logits_fn(TinyTransformer()), random_stream(length), byte_table(),
                              seq_len=seq_len, stride=stride, batch_tokens=4 * seq_len)
            results.append(result.to_dict())
        Path(out_dir, f"rank{rank}.json").write_text(json.dumps(results))
        dist.barrier()  # both ranks done before teardown: gloo can abort a rank that exits first
    finally:
        dist.destroy_process_group()


def test_two_gloo_processes_equal_one(tmp_path):
    if not dist.is_available():
        pytest.skip("torch.distributed is not available in this build")
    mp.spawn(_worker, args=(2, str(tmp_path / "init"), str(tmp_path)), nprocs=2, join=True)
    single = [evaluate(logits_fn(TinyTransformer()), random_stream(length), byte_table(), seq_len=seq_len,
                       stride=stride) for length, seq_len, stride in CASES]
    for rank in range(2):
        results = json.loads((tmp_path / f"rank{rank}.json").read_text())
        for got, want in zip(results, single):
            assert got["world_size"] == 2 and want.world_size == 1
            assert got["tokens"] == want.tokens and got["bytes"] == want.bytes and got["windows"] == want.windows
            assert abs(got["loss_sum_nats"] - want.loss_sum_nats) <= 1e-9 * abs(want.loss_sum_nats)
            assert abs(got["val_bpb"] - want.val_bpb) <= 1e-9 * want.val_bpb


def test_scaling_bench_runs_torchrun_per_count_and_reports_equal_results(tmp_path):
    """bench/eval_scaling.py on the CPU (gloo): one and two processes, the JSON the issue asks for, the
    two counts' scores equal to 1e-9, and no 4-GPU figure when 4 processes did not run."""
    repo = Path(__file__).resolve().parents[1]
    proc = subprocess.run(
        [sys.executable, str(repo / "bench" / "eval_scaling.py"), "--cpu", "--nprocs", "1,2", "--tokens", "1500",
         "--out-dir", str(tmp_path), "--", "--small", "--seq-len", "64", "--stride", "16", "--batch-windows", "8"],
        capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    result = json.loads((tmp_path / "eval_scaling_cpu-check.json").read_text())
    assert set(result["seconds_per_split"]) == {"1", "2"}
    assert result["speedup_2gpu"] is not None and result["speedup_4gpu"] is None
    assert result["max_rel_diff"] <= 1e-9
    per = result["per_count"]
    assert per["1"]["val_loss"] == pytest.approx(per["2"]["val_loss"], rel=1e-9)
    assert result["stream_tokens"] == 1500
