#!/usr/bin/env bash
# The GPU work of the evaluator's speed issue in one call, on one CUDA machine, from the repo root:
#   bash bench/gpu_session.sh [RESULTS_DIR]        (FUSED_TUNE=0: the default tiles, no tuning)
# 1. the GPU tests (the fused kernels against the plain model in bf16, the evaluator on CUDA);
# 2. the fused kernels' tile tuning and the throughput bench: fused fast path, plain compiled fast
#    path, eager and compiled naive loops, kernel profile; JSON with the device name.
# Results and logs go to RESULTS_DIR (default $OUT when set, else bench/results). A failing test does
# not stop the bench: both outcomes are worth the machine time.
set -uo pipefail
cd "$(dirname "$0")/.."
results="${1:-${OUT:-bench/results}}"
mkdir -p "$results"
export PYTHONUNBUFFERED=1 PYTHONPATH=.
# The device image lacks jsonschema and zstandard, which the test suite imports: carried as wheels in
# .whl (see the README's benchmarks section), installed beside the image's packages.
if compgen -G ".whl/*.whl" > /dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
        && export PYTHONPATH=.:/tmp/site
fi
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,memory.used --format=csv | tee "$results/gpu_session_device.txt"
python3 -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__)" | tee -a "$results/gpu_session_device.txt"
timeout 150 python3 -m pytest -q -m gpu 2>&1 | tee "$results/gpu_session_tests.log" | tail -15
tests_status=${PIPESTATUS[0]}
tune=(--tune --repeats 2)
[[ "${FUSED_TUNE:-1}" == 0 ]] && tune=(--repeats 3)
timeout 420 python3 bench/eval_throughput.py --model fused "${tune[@]}" --also-plain --naive-compiled --profile \
    --out-dir "$results" 2>&1 | tee "$results/gpu_session_bench.log" | grep -v '^ *[0-9.]*%  '
bench_status=${PIPESTATUS[0]}
echo "gpu tests exit $tests_status, bench exit $bench_status"
exit $(( tests_status || bench_status ))
