"""Run bench/ws_gemm.py's product on one case per process, so that a kernel that faults or hangs is
reported as such and does not take the other cases with it (a CUDA fault poisons its process).

    PYTHONPATH=. python bench/ws_gemm_probe.py            # every case, 40 s each
    PYTHONPATH=. python bench/ws_gemm_probe.py ROWS N K BLOCK_M BLOCK_N STAGES CONSUMERS   # one case, in-process
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

CASES = [  # rows, N, K, block_m, block_n, stages, consumers: few tiles, then several a program
    (1000, 1024, 512, 64, 128, 4, 1), (8192, 1024, 512, 64, 128, 4, 2), (1600, 1024, 512, 128, 128, 4, 2),
    (8192, 1024, 512, 128, 128, 4, 2), (8192, 512, 1024, 128, 128, 5, 2), (8192, 1024, 512, 64, 256, 4, 2),
    (262144, 1024, 512, 64, 128, 5, 2), (262144, 1024, 512, 128, 128, 4, 2), (262144, 1024, 512, 128, 128, 5, 2),
    (262144, 512, 1024, 128, 128, 5, 2),
]


def one(rows: int, n: int, k: int, block_m: int, block_n: int, stages: int, consumers: int) -> None:
    import torch
    import torch.nn.functional as F
    from triton.testing import do_bench

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import ws_gemm

    torch.manual_seed(0)
    a = torch.randn(rows, k, device="cuda", dtype=torch.bfloat16)
    w = torch.randn(n, k, device="cuda", dtype=torch.bfloat16)
    config = ws_gemm.WsConfig(block_m=block_m, block_n=block_n, stages=stages, consumers=consumers)
    got = ws_gemm.ws_product(a, w, config)[0]
    torch.cuda.synchronize()
    want = F.linear(a, w)
    diff = float((got.float() - want.float()).abs().max() / want.float().abs().max())
    timing = ""
    if rows >= 65536:
        ws = do_bench(lambda: ws_gemm.ws_product(a, w, config), warmup=25, rep=100, return_mode="median")
        cublas = do_bench(lambda: F.linear(a, w), warmup=25, rep=100, return_mode="median")
        timing = f" ws {ws:.4f} ms, cuBLAS {cublas:.4f} ms"
    print(f"ok max diff / max {diff:.2e}{timing}")


def main() -> int:
    if len(sys.argv) == 8:
        one(*map(int, sys.argv[1:]))
        return 0
    for case in CASES:
        try:
            done = subprocess.run([sys.executable, __file__, *map(str, case)], capture_output=True, text=True,
                                  timeout=40)
            lines = (done.stdout + done.stderr).strip().splitlines()
            verdict = lines[-1][:160] if lines else f"exit {done.returncode}, no output"
            if done.returncode:
                errors = [line for line in lines if "Error" in line]
                verdict = f"exit {done.returncode}: {(errors or lines or [''])[-1][:160]}"
        except subprocess.TimeoutExpired:
            verdict = "timed out after 40 s (a barrier that never completes?)"
        print(f"rows {case[0]:>6} N {case[1]:>4} K {case[2]:>4} BM {case[3]:>3} BN {case[4]:>3} stages {case[5]} "
              f"consumers {case[6]}: {verdict}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
