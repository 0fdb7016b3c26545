#!/usr/bin/env bash
# The Gluon products' GPU work in one call on a Hopper machine, from the repo root:
#   bash bench/ws_gemm_session.sh [RESULTS_DIR]
# 1. bench/ws_gemm_probe.py: each case in its own process, 40 s each (a fault or a deadlocked barrier
#    would otherwise take the rest of the call with it);
# 2. the GPU tests of bench/ws_gemm.py against bench/fused_model.py's Triton kernels;
# 3. bench/ws_gemm_bench.py: the products timed against cuBLAS and the Triton kernels (JSON with the device);
# 4. the evaluator end to end (bench/eval_throughput.py --model fused): on the Gluon products, against the
#    plain compiled fast path, then on the Triton kernels alone (default tiles), same stream, same call.
#    WS_PROBE=0, WS_BENCH=0, TRITON_EVAL=0 skip steps 1, 3 and the Triton-only evaluator run; NAIVE=0 the
#    naive loop; TESTS_K selects tests (pytest -k); GRAPHS=1 replays the evaluator's batches from a CUDA graph
#    (and times it without, in the same run); TIMELINE=1 first runs bench/forward_timeline.py --gluon (where one
#    batch's time goes: kernels in order, idle gaps, host issue time, clocks under sustained load);
#    WS_RESIDUAL=base|prefetch|gather|both (ws_gemm.DEFAULT_RESIDUAL_OPERANDS when unset) picks where the residual epilogue's operands come from (timeline and
#    evaluator); WS_BENCH_ONLY="residual ..." limits the kernel bench to those products.
set -uo pipefail
cd "$(dirname "$0")/.."
results="${1:-${OUT:-bench/results}}"
mkdir -p "$results"
export PYTHONUNBUFFERED=1 PYTHONPATH=.
if compgen -G ".whl/*.whl" > /dev/null; then  # jsonschema, zstandard: see bench/gpu_session.sh
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
        && export PYTHONPATH=.:/tmp/site
fi
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv | tee "$results/ws_gemm_device.txt"
consumers=(--consumers 1 2)
timeline_status=0
if [[ "${TIMELINE:-0}" != 0 ]]; then
    graphs=()
    [[ "${GRAPHS:-0}" == 0 ]] && graphs=(--no-graphs)
    [[ -n "${WS_RESIDUAL:-}" ]] && graphs+=(--ws-residual "$WS_RESIDUAL")
    timeout 200 python3 bench/forward_timeline.py --gluon --also-without-table "${graphs[@]}" \
        --out-dir "$results" 2>&1 \
        | tee "$results/forward_timeline.log"
    timeline_status=${PIPESTATUS[0]}
fi
if [[ "${WS_PROBE:-1}" != 0 ]]; then
    timeout 200 python3 bench/ws_gemm_probe.py 2>&1 | tee "$results/ws_gemm_probe.log"
    if grep -q "timed out" "$results/ws_gemm_probe.log"; then echo "a probe case hung: no tests, no bench"; exit 1; fi
    if grep -q "consumers 2: exit" "$results/ws_gemm_probe.log"; then  # a fault would poison the bench's process
        echo "the ping-pong schedule faulted in the probe: the bench times one consumer only"; consumers=(--consumers 1)
    fi
fi
timeout 240 python3 -m pytest -q -m gpu tests/test_ws_gemm.py tests/test_fused_model.py tests/test_evaluator.py -k "${TESTS_K:-}" 2>&1 | tee "$results/ws_gemm_tests.log" | tail -15
tests_status=${PIPESTATUS[0]}
bench_status=0
if [[ "${WS_BENCH:-1}" != 0 ]]; then
    only=()
    [[ -n "${WS_BENCH_ONLY:-}" ]] && only=(--only $WS_BENCH_ONLY)
    timeout 200 python3 bench/ws_gemm_bench.py --out-dir "$results" "${consumers[@]}" "${only[@]}" 2>&1 \
        | tee "$results/ws_gemm_bench.log"
    bench_status=${PIPESTATUS[0]}
fi
extra=()
[[ "${NAIVE:-1}" == 0 ]] && extra+=(--no-naive)
[[ "${GRAPHS:-0}" != 0 ]] && extra+=(--cuda-graphs)
[[ -n "${WS_RESIDUAL:-}" ]] && extra+=(--ws-residual "$WS_RESIDUAL")
timeout 330 python3 bench/eval_throughput.py --model fused --gluon --also-plain --repeats 3 --profile "${extra[@]}" \
    --out-dir "$results" 2>&1 | tee "$results/eval_gluon.log" | grep -v '^ *[0-9.]*%  '
gluon_status=${PIPESTATUS[0]}
triton_status=0
if [[ "${TRITON_EVAL:-1}" != 0 ]]; then
    timeout 120 python3 bench/eval_throughput.py --model fused --no-naive --repeats 3 --out-dir "$results" 2>&1 \
        | tee "$results/eval_triton.log" | tail -8
    triton_status=${PIPESTATUS[0]}
fi
echo "timeline exit $timeline_status, ws_gemm tests exit $tests_status, kernel bench exit $bench_status, evaluator: gluon $gluon_status, triton $triton_status"
exit $(( timeline_status || tests_status || bench_status || gluon_status || triton_status ))
