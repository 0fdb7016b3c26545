"""bench/ws_gemm.py's warp-specialised Gluon products: on the CPU they compile for sm_90a (the offline
compiler, nothing runs: Gluon has no interpreter); on a Hopper GPU (`pytest -m gpu`) each epilogue gives
the values of bench/fused_model.py's Triton kernel for the same inputs, to one bf16 rounding, including
row counts that no tile divides and fewer tiles than SMs."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch

pytest.importorskip("triton", reason="the Gluon kernels need Triton (pip install -e .[test] installs it)")
try:
    from triton.experimental import gluon  # noqa: F401
except ImportError:
    pytest.skip("this Triton has no Gluon", allow_module_level=True)

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
if "TRITON_INTERPRET" not in os.environ:
    import ws_gemm  # noqa: E402
else:  # a Gluon kernel cannot be defined under the interpreter
    pytest.skip("TRITON_INTERPRET is set", allow_module_level=True)

ON_HOPPER = torch.cuda.is_available() and torch.cuda.get_device_capability()[0] == 9


def test_kernels_compile_for_hopper_with_wgmma_tma_and_no_spills(tmp_path):
    """bench/ws_gemm_report.py compiles every epilogue variant (bare, relu², the residual with and without
    mix, skip and extra output, qkv with and without queries) at the default and the benchmark's tiles for
    sm_90a: each uses wgmma (HGMMA) fed by TMA, redistributes registers between the partitions
    (setmaxnreg), spills nothing and fits the SM's 227 KiB of shared memory. In a process of its own:
    this one may have imported Triton under its interpreter (tests/test_fused_model.py does)."""
    import json

    report_path = tmp_path / "report.json"
    env = dict(os.environ, TRITON_CACHE_DIR=str(tmp_path / "triton-cache"))
    env.pop("TRITON_INTERPRET", None)
    script = Path(__file__).resolve().parents[1] / "bench" / "ws_gemm_report.py"
    done = subprocess.run([sys.executable, str(script), "--json", str(report_path)], capture_output=True, text=True,
                          env=env, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    kernels = json.loads(report_path.read_text())["kernels"]
    variants = {k["variant"] for k in kernels}
    assert {"bare", "relu2", "residual", "residual_mix_skip_extra", "qkv", "qkv_keys_values"} <= variants
    assert {k["config"]["consumers"] for k in kernels} == {1, 2}
    for kernel in kernels:
        assert not kernel["error"] and kernel["spill_bytes"] == 0, kernel
        assert kernel["hgmma"] and kernel["tma_loads"] and kernel["setmaxnreg"], kernel
        assert kernel["shared_bytes"] <= 227 * 1024, kernel


def test_configurations_the_hardware_cannot_take_are_refused():
    with pytest.raises(ValueError, match="64 or 128 rows"):
        ws_gemm.WsConfig(block_m=256)
    with pytest.raises(ValueError, match="64 K registers"):
        ws_gemm.WsConfig(consumer_regs=256)
    with pytest.raises(ValueError, match="power of two"):
        ws_gemm.WsConfig(block_n=96)
    with pytest.raises(ValueError, match="consumers must be 1 or 2"):
        ws_gemm.WsConfig(consumers=3)


def test_x0_ids_must_fit_the_table_and_the_rows():
    a, w = torch.zeros(256, 64, dtype=torch.bfloat16), torch.zeros(128, 64, dtype=torch.bfloat16)
    table = torch.zeros(1024, 128, dtype=torch.bfloat16)
    with pytest.raises(ValueError, match="one token id for each of the 256 rows"):
        ws_gemm.ws_product(a, w, ws_gemm.WsConfig(), epilogue=ws_gemm.RESIDUAL, res=torch.zeros(256, 128),
                           x0=table, x0_ids=torch.zeros(255, dtype=torch.int64), mix=torch.zeros(256))
    with pytest.raises(ValueError, match=r"\[vocab, 128\] table"):
        ws_gemm.ws_product(a, w, ws_gemm.WsConfig(), epilogue=ws_gemm.RESIDUAL, res=torch.zeros(256, 128),
                           x0=torch.zeros(1024, 64), x0_ids=torch.zeros(256, dtype=torch.int64), mix=torch.zeros(256))


@pytest.mark.skipif(ON_HOPPER, reason="checks the refusal on other devices")
def test_a_device_other_than_hopper_is_refused_with_a_reason():
    a = torch.zeros(128, 64, dtype=torch.bfloat16)
    with pytest.raises(RuntimeError, match="Hopper GPU"):
        ws_gemm.ws_product(a, torch.zeros(128, 64, dtype=torch.bfloat16), ws_gemm.WsConfig())


@pytest.mark.gpu
@pytest.mark.skipif(not ON_HOPPER, reason="Gluon's wgmma kernels need a Hopper GPU")
@pytest.mark.parametrize("rows", [64 * 132 * 3 + 40, 200])
@pytest.mark.parametrize("block_m, block_n, stages, consumers", [
    (64, 128, 4, 2), (64, 256, 3, 2), (128, 128, 4, 1), (128, 128, 5, 2)])
def test_epilogues_match_the_triton_kernels(rows, block_m, block_n, stages, consumers):
    import fused_model
    from baseline_model import BaselineShapedGPT, ModelShape

    torch.manual_seed(0)
    device = torch.device("cuda")
    model = BaselineShapedGPT(ModelShape()).to(device=device, dtype=torch.bfloat16)
    with torch.no_grad():  # non-trivial scales, mixes and skip weights
        for parameter in model.parameters():
            if parameter.ndim <= 2 and parameter.numel() <= 2 * 512 * 8:
                parameter.add_(0.3 * torch.randn_like(parameter))
    fused = fused_model.FusedBaselineGPT(model)
    params = fused.blocks[1]
    config = ws_gemm.WsConfig(block_m=block_m, block_n=block_n, stages=stages, consumers=consumers)
    ids = torch.randint(0, 1024, (1, rows), device=device)
    x0, x, ss = fused._embed(ids, params["mix"])
    x0_table = fused._embed(torch.arange(1024, device=device), params["mix"])[0]
    hidden = torch.randn(rows, 1024, device=device, dtype=torch.bfloat16).abs_()
    skip_source = torch.randn_like(x)

    def close(got, want):
        got, want = got.float(), want.float()
        scale = want.abs().max()
        assert (got - want).abs().max() <= 2 ** -7 * scale, (got - want).abs().max() / scale
        assert (got != want).float().mean() < 0.02  # rounding ties only

    def sums_close(got, want):  # fp32 sums of squares, added in another order
        assert torch.allclose(got, want, rtol=1e-6, atol=0)

    bare, _ = ws_gemm.ws_product(x, params["fc"], config)
    close(bare, torch.nn.functional.linear(x, params["fc"]))
    relu2, _ = ws_gemm.ws_product(x, params["fc"], config, epilogue=ws_gemm.RELU2, ss=ss, eps=fused.eps)
    close(relu2, fused._relu2(x, ss, params["fc"]))
    residual_options = (dict(), dict(x0=x0, mix=params["mix"]),
                        dict(x0=x0, mix=params["mix"], skip=1, skip_source=skip_source, skip_w=fused.skip_weights[0]),
                        dict(x0=x0, mix=params["mix"], skip=2, skip_w=fused.skip_weights[0]))
    if block_n != ws_gemm.SS_CHUNK:  # the residual epilogue takes tiles one sums-of-squares chunk wide
        residual_options = ()
    for options in residual_options:
        want_extra, extra = torch.empty_like(x), torch.empty_like(x)
        want, want_ss = fused._residual(hidden, params["down"], x, params["mlp_scale"], write_ss=True,
                                        extra=want_extra, **options)
        got, got_ss = ws_gemm.ws_product(hidden, params["down"], config, epilogue=ws_gemm.RESIDUAL, res=x,
                                         scale=params["mlp_scale"], write_ss=True, extra=extra, **options)
        close(got, want)
        sums_close(got_ss, want_ss)
        close(extra, want_extra)
        # The operand options change where the epilogue's inputs come from, not the arithmetic: the same
        # bits. x0_from_ids reads x0 from the embed kernel's x0 of every id, by the rows' ids.
        for flags in (dict(prefetch_l2=True), dict(x0_from_ids=True), dict(prefetch_l2=True, x0_from_ids=True)):
            flagged = replace(config, **flags)
            chosen = dict(options)
            if flagged.x0_from_ids:
                if "mix" not in options:
                    continue
                chosen.update(x0=x0_table, x0_ids=ids.reshape(-1))
            again_extra = torch.empty_like(x)
            again, again_ss = ws_gemm.ws_product(hidden, params["down"], flagged, epilogue=ws_gemm.RESIDUAL, res=x,
                                                 scale=params["mlp_scale"], write_ss=True, extra=again_extra, **chosen)
            assert torch.equal(again, got) and torch.equal(again_ss, got_ss) and torch.equal(again_extra, extra), flags
    gain = params["q_gain"]
    for q_cols, k_cols, weight in ((512, 256, params["qkv"]), (0, 256, params["qkv"][512:]),
                                   (512, 0, params["qkv"][:512])):
        weight = weight.contiguous()
        for rows_per_window, pos_offset in ((1024, 0), (64, 1024 - 64)):  # whole windows; the last 64 positions
            want = fused._qkv(x, ss, weight, q_cols, k_cols, gain, rows_per_window, pos_offset)
            got = ws_gemm.ws_qkv(x, ss, weight, config, q_cols=q_cols, k_cols=k_cols, head_dim=64, gain=gain,
                                 cos=fused.cos, sin=fused.sin, rows_per_window=rows_per_window, pos_offset=pos_offset,
                                 eps=fused.eps)
            for got_part, want_part in zip(got, want):
                assert (got_part is None) == (want_part is None)
                if want_part is not None:
                    close(got_part, want_part)



@pytest.mark.skipif(ON_HOPPER, reason="checks the refusal on other devices")
def test_the_throughput_bench_refuses_gluon_off_hopper_without_a_traceback():
    root = Path(__file__).resolve().parents[1]
    env = dict(os.environ, PYTHONPATH=str(root), CUDA_VISIBLE_DEVICES="")
    env.pop("TRITON_INTERPRET", None)
    done = subprocess.run([sys.executable, str(root / "bench" / "eval_throughput.py"), "--model", "fused", "--gluon",
                           "--small", "--tokens", "2000", "--seq-len", "64"], capture_output=True, text=True, env=env,
                          timeout=300)
    assert done.returncode == 1
    assert "Hopper GPU" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal without a GPU")
@pytest.mark.parametrize("script, arguments, message", [
    ("eval_throughput.py", ["--model", "fused", "--cuda-graphs", "--small", "--tokens", "2000", "--seq-len", "64"],
     "--cuda-graphs needs a CUDA device"),
    ("eval_throughput.py", ["--model", "fused", "--small", "--tokens", "2000", "--seq-len", "64"],
     "on the CPU under TRITON_INTERPRET=1"),
    ("forward_timeline.py", ["--gluon"], "needs a CUDA GPU")])
def test_gpu_only_bench_modes_refuse_the_cpu_with_one_line(script, arguments, message):
    root = Path(__file__).resolve().parents[1]
    env = dict(os.environ, PYTHONPATH=str(root), CUDA_VISIBLE_DEVICES="")
    env.pop("TRITON_INTERPRET", None)
    done = subprocess.run([sys.executable, str(root / "bench" / script), *arguments], capture_output=True, text=True,
                          env=env, timeout=300)
    assert done.returncode == 1
    assert message in done.stderr and "Traceback" not in done.stderr
