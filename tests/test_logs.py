"""The log parser: values pinned from real fixture logs (read by eye from the files), one or more per
format family, and the malformed inputs it must survive."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from harness.submission.logs import SEPARATOR, parse_log

T10 = "track_10min_16mb/"
NR = "track_non_record_16mb/"

# Each row: a fixture log and what its lines say (line numbers as `grep -n` prints them).
PINNED = [
    pytest.param(T10 + "2026-03-17_NaiveBaseline/train.log", dict(
        format_family="baseline", seed=1337, world_size=8, val_token_count=63_779_840, dataset="fineweb10B_sp1024",
        stop_reason="wallclock_cap", stop_train_time_ms=600_038.0, stop_step=13_780, model_bytes=15_815_847,
        code_bytes=47_642, total_bytes=15_863_489, script_lines=None,
        score=("final_int8_zlib_roundtrip", 1.22436570, 2.07269931, 1401.0, 448)), id="baseline-naive"),
    pytest.param(T10 + "2026-03-18_LongContextSeq2048/train_seed1338.log", dict(
        format_family="baseline", seed=1338, world_size=8, val_token_count=62_021_632,
        stop_train_time_ms=600_043.0, stop_step=11_575, model_bytes=15_813_523, total_bytes=15_861_239,
        score=("final_int8_zlib_roundtrip", 1.20617460, 2.03657529, 1638.0, 124)), id="baseline-seq2048"),
    pytest.param(T10 + "2026-03-20_11L_XSA4_EMA_Int6_MLP3x_WD04_1.1271/train_seed42.log", dict(
        format_family="baseline", seed=42, world_size=8, stop_train_time_ms=600_017.0, model_bytes=15_679_840,
        model_format="int6+zstd", code_bytes=66_133, total_bytes=15_745_973, script_lines=(1, 1556),
        modes=["final_int6_roundtrip", "final_int6_sliding_window"],
        score=("final_int6_sliding_window", 1.12862486, 1.90563076, 84494.0, 1704)), id="baseline-code-int6-sliding"),
    pytest.param(T10 + "2026-03-23_LeakyReLU_LegalTTT_ParallelMuon/train_seed42.log", dict(
        format_family="baseline", seed=42, stop_train_time_ms=600_128.0, model_bytes=15_787_052, total_bytes=15_876_510,
        modes=["DIAGNOSTIC post_ema", "final_int6_roundtrip", "final_int6_sliding_window", "ttt_sliding:done",
               "legal_ttt"],
        score=("legal_ttt", 1.12002032, 1.89110239, 408049.0, 275)), id="baseline-legal-ttt"),
    pytest.param(T10 + "2026-03-17_LoRA_TTT/train_v1.txt", dict(
        format_family="baseline", seed=1337, world_size=2, stop_train_time_ms=2_400_107.0, code_bytes=47_686,
        script_lines=(1, 1374), modes=["final_int8_zlib_roundtrip", "final_ttt_lora"],
        score=("final_ttt_lora", 1.1927, 2.0139, 60031.0, 1809)), id="baseline-lora-ttt"),
    pytest.param(T10 + "2026-03-19_MixedQuant_Int6Int8_SlidingWindow/train.log", dict(
        format_family="baseline", seed=1337, stop_train_time_ms=600_044.0, stop_step=12_395, model_bytes=15_296_720,
        code_bytes=56_770, total_bytes=15_353_490, script_lines=(2961, 4284), runs=3,
        score=("final_sliding_window_eval", 1.16301431, 1.96369923, 72650.0, 4464)), id="baseline-three-runs"),
    pytest.param(T10 + "2026-04-01_Vocab4096_MLPMult4_WD085/train_seed42.log", dict(
        format_family="hparams", seed=42, world_size=8, val_token_count=45_508_608, dataset="fineweb10B_sp4096",
        stop_train_time_ms=590_022.0, stop_step=5967, code_bytes=68_207, model_bytes=15_847_061,
        total_bytes=15_915_268, script_lines=(74, 1701),
        modes=["pre-quantization post-ema", "final_int6_roundtrip", "final_int6_sliding_window"],
        score=("final_int6_sliding_window", 1.09743840, 2.52523582, 65493.0, 1805)), id="hparams-code-after-block"),
    pytest.param(T10 + "2026-04-05_SP8192_GPTQ-Embeddings_SDClip_Loop45x2/train_seed1234.log", dict(
        format_family="hparams", seed=1234, world_size=8, val_token_count=40_540_160, dataset="fineweb10B_sp8192",
        stop_train_time_ms=588_024.0, code_bytes=15_516, model_bytes=15_967_802, total_bytes=15_983_318,
        script_lines=None, score=("quantized_sliding_window", 1.08462640, 2.80170263, 83811.0, 193)),
        id="hparams-no-code"),
    pytest.param(T10 + "2026-04-10_VarLenAttn/logs/train2.txt", dict(
        format_family="hparams", seed=2, world_size=8, val_token_count=40_540_160, stop_train_time_ms=587_072.0,
        code_bytes=26_845, code_bytes_uncompressed=116_694, model_bytes=15_957_953, total_bytes=15_984_798,
        script_lines=(104, 2953),
        modes=["diagnostic pre-quantization post-ema", "diagnostic quantized", "quantized_ttt_lora"],
        score=("quantized_ttt_lora", 1.07426259, 2.77493185, 312976.0, 3170)), id="hparams-source-code-block"),
    pytest.param(T10 + "2026-04-13_VarLenAttn_PhasingTTT2000/logs/train1.txt", dict(
        format_family="hparams", seed=1, world_size=8, val_token_count=40_540_160, stop_train_time_ms=587_073.0,
        code_bytes=28_599, model_bytes=15_967_386, total_bytes=15_995_985,
        score=("quantized_ttt_phased", 1.07300174, 2.77167493, 515324.0, 497)), id="hparams-timestamped"),
    pytest.param(T10 + "2026-04-06_SP8192_QK5_LegalTTT_1.0828/train_seed0.log", dict(
        format_family="hparams", seed=0, stop_train_time_ms=588_035.0, total_bytes=15_991_018,
        score=("ttt_sliding:done", 1.082098, 2.795171, 293200.0, 273)), id="hparams-ttt-key-equals"),
    pytest.param(T10 + "2026-04-29_SmearGateBOSFix_3Seed_1.06141/train_seed314_rerun_gptq8s.log", dict(
        format_family="hparams", seed=314, val_token_count=47_851_520, stop_train_time_ms=592_045.0,
        code_bytes=31_385, total_bytes=15_951_777, script_lines=(130, 3704),
        score=("quantized_ttt_phased", 1.06090748, 2.32165882, 429520.0, 4426)), id="hparams-caseops"),
    pytest.param(T10 + "2026-03-24_74M_Ternary_UNet_FP8_10L_8192BPE_YaRN_NeoMuon/ternary_log_1337.txt", dict(
        format_family="compact", seed=1337, world_size=8, model_params=73_685_840, stop_train_time_ms=599_128.0,
        stop_step=6520, code_bytes=70_853, total_bytes=15_995_705, model_bytes=15_995_705 - 70_853,
        script_lines=(1, 1436), modes=["final_ternary_roundtrip", "final_sliding"],
        score=("final_sliding", 1.1568, 2.9877, 428712.0, 1460)), id="compact-ternary"),
    pytest.param(NR + "2026-04-05_118M_XNOR-Net_FP8_1024D_10L/log_10mins_seed-42.txt", dict(
        format_family="compact", seed=42, world_size=8, model_params=117_618_768, stop_reason="wallclock_cap",
        stop_train_time_ms=598_686.0, stop_step=None, code_bytes=78_442, total_bytes=15_959_813,
        score=("final_sliding", 1.5561, 2.7923, 428012.0, 1723)), id="compact-xnor-stop-without-step"),
    pytest.param(NR + "2026-03-26_37M_LeWM_Jepa_Mamba2_10L_UNet_INT4FP8QAT_Brotli/train_log_bpe_10min.txt", dict(
        format_family="compact", seed=42, world_size=8, model_params=36_915_884, stop_train_time_ms=600_460.0,
        modes=["final_roundtrip", "final_temped", "final_sliding"],
        score=("final_sliding", 1.2566, 3.2455, 123304.0, 1748)), id="compact-jepa-commas"),
    pytest.param(NR + "2026-03-31_LegendreGPT/train.log", dict(
        format_family="baseline", seed=None, world_size=None, val_token_count=62_021_632, code_bytes=70_969,
        raw_model_bytes=85_587_955, model_bytes=15_370_972, total_bytes=15_441_941,
        score=("final_INT7_zlib_roundtrip", 1.2353, 2.0784, None, 1872)), id="legendre-custom-sizes"),
    pytest.param(NR + "2026-03-30_ByteJEPA/logs/train_run_rtx5090.txt", dict(
        format_family="baseline", seed=1337, world_size=1, val_token_count=151_076_864, dataset="fineweb10B_bytes",
        gpu_names=["NVIDIA GeForce RTX 5090"], stop_train_time_ms=3_600_476.0, total_bytes=15_132_832,
        score=("final_int8_zlib_roundtrip", 1.34960213, 0.93547291, 71405.0, 1346)), id="baseline-1gpu-bytes"),
    pytest.param(NR + "2026-03-29_HNet_ByteVsSubword_Study/train_byte260_best_10_min.log", dict(
        format_family="baseline", seed=1337, world_size=8, val_token_count=151_130_112, tokenizer="byte",
        dataset="fineweb10B_byte260", stop_train_time_ms=599_995.0, total_bytes=15_779_986, runs=2,
        score=("final_int8_zlib_roundtrip", 1.40320671, 0.97230700, 8881.0, 1513)), id="baseline-duplicated-byte260"),
    pytest.param(NR + "2026-03-23_DGAttention_DavidGao/train.log", dict(
        format_family="baseline", seed=1337, world_size=8, val_token_count=62_021_632, model_bytes=16_558_180,
        code_bytes=80_288, total_bytes=16_638_468, score=None), id="baseline-no-final-metric"),
    pytest.param(T10 + "2026-04-23_SP8192_CaseOps_SparseGate_QuantGate_Loop45_PhasedTTT_PolarNS_MinLR_FusedCE/"
                 "ttt_pr1767/summary.log", dict(format_family="unknown", score=None), id="unknown-summary"),
]


@pytest.mark.parametrize("relpath, expected", PINNED)
def test_fixture_log_values(fixture_records: Path, relpath: str, expected: dict) -> None:
    run = parse_log(fixture_records / relpath)
    expected = dict(expected)
    score = expected.pop("score")
    runs = expected.pop("runs", 1)
    modes = expected.pop("modes", None)
    for name, value in expected.items():
        assert getattr(run, name) == value, name
    if score is None:
        assert run.score() is None
        assert any("no final metric" in p for p in run.problems)
    else:
        mode, bpb, loss, eval_time, line = score
        got = run.score()
        assert (got.mode, got.line, got.eval_time_ms) == (mode, line, eval_time)
        assert got.val_bpb == pytest.approx(bpb, abs=1e-9) and got.val_loss == pytest.approx(loss, abs=1e-9)
    if modes is not None:
        assert [m.mode for m in run.metrics] == modes
    assert any("runs (or copies" in p for p in run.problems) == (runs > 1)


def test_every_fixture_log_parses(fixture_records: Path) -> None:
    logs = [p for p in fixture_records.rglob("*") if p.suffix in (".log", ".txt") and p.name != "requirements.txt"]
    assert len(logs) >= 100
    families = {}
    for path in logs:
        run = parse_log(path)
        assert not any("parser stopped" in p for p in run.problems), path
        families.setdefault(run.format_family, 0)
        families[run.format_family] += 1
    assert set(families) == {"baseline", "hparams", "compact", "unknown"}


def test_embedded_script_is_the_source_that_was_logged(fixture_records: Path) -> None:
    run = parse_log(fixture_records / T10 / "2026-03-20_11L_XSA4_EMA_Int6_MLP3x_WD04_1.1271/train_seed42.log")
    assert run.script.startswith('"""\ntrain_gpt_submit.py — Submission v2: wider MLP + STE int6 QAT')
    assert run.script.rstrip().endswith('if __name__ == "__main__":\n    main()')
    assert len(run.script.splitlines()) == 1555  # the 1556th line before the separator is print's newline


# -- synthetic logs: one format each, and the malformed inputs --------------------------------------

BASELINE = """\
val_loader:shards pattern=./data/datasets/fineweb10B_sp1024/fineweb_val_*.bin tokens:62021632
world_size:8 grad_accum_steps:1
seed:7
step:100/200 train_loss:3.5000 train_time:1000ms step_avg:10.00ms
step:200/200 val_loss:2.5000 val_bpb:1.5000 train_time:2000ms step_avg:10.00ms
Serialized model int8+zlib: 1000 bytes (payload:1 raw_torch:1 payload_ratio:1.00x)
Code size: 50 bytes
Total submission size int8+zlib: 1050 bytes
final_int8_zlib_roundtrip val_loss:2.5123 val_bpb:1.5235 eval_time:1500ms
final_int8_zlib_roundtrip_exact val_loss:2.51234567 val_bpb:1.52345678
"""


def test_baseline_text_parses_and_exact_digits_win() -> None:
    run = parse_log(BASELINE)
    assert (run.seed, run.world_size, run.val_token_count, run.dataset) == (7, 8, 62_021_632, "fineweb10B_sp1024")
    assert (run.model_bytes, run.code_bytes, run.total_bytes, run.model_format) == (1000, 50, 1050, "int8+zlib")
    assert run.stop_reason == "iterations" and run.train_time_ms == 2000.0 and run.last_step == 200
    [metric] = run.metrics
    assert (metric.val_bpb, metric.val_loss, metric.exact, metric.eval_time_ms, metric.line) == (
        1.52345678, 2.51234567, True, 1500.0, 10)
    assert run.problems == []


def test_echo_of_a_value_under_another_name_is_not_a_new_mode() -> None:
    text = BASELINE + ("final_int6_sliding_window val_loss:2.4000 val_bpb:1.4000 stride:64 eval_time:9000ms\n"
                       "final_int6_sliding_window_exact val_loss:2.40000001 val_bpb:1.40000002\n"
                       "final_int8_zlib_roundtrip_exact val_loss:2.40000001 val_bpb:1.40000002\n")
    run = parse_log(text)
    assert run.finals["final_int8_zlib_roundtrip"].val_bpb == 1.52345678
    assert run.score().mode == "final_int6_sliding_window" and run.score().stride == 64


def test_crlf_ansi_rank_prefixes_and_progress_redraws() -> None:
    text = BASELINE.replace("\n", "\r\n")
    text = text.replace("seed:7", "\x1b[32mseed:7\x1b[0m").replace("world_size:8", "[default0]:world_size:8")
    text = text.replace("step:100/200", "loading 10%\rloading 90%\rstep:100/200")
    run = parse_log(text.encode("utf-8"))
    assert (run.seed, run.world_size, len(run.steps)) == (7, 8, 1)
    assert run.score().val_bpb == 1.52345678 and run.problems == []


def test_torchrun_warnings_and_interleaved_ranks_are_ignored() -> None:
    noise = ("W0318 14:37:59.159000 871689 site-packages/torch/distributed/run.py:852] *****\n"
             "[rank3]:[W318 14:38:11.514156940 Utils.hpp:137] Warning: NCCL_ASYNC_ERROR_HANDLING is deprecated\n"
             "[rank1]: step:5/200 something unrelated val_loss: nan\n")
    run = parse_log(noise + BASELINE + noise)
    assert run.seed == 7 and run.score().val_bpb == 1.52345678


def test_timestamped_hparams_family() -> None:
    text = ("1776142360.285   seed: 3\n1776142360.287   world_size: 8\n1776142361.202 val_tokens: 40540160\n"
            "1776142361.300 100/200 train_loss: 3.0000 train_time: 1.5m tok/s: 8000000\n"
            "1776143350.417 stopping_early: wallclock_cap train_time: 590000ms step: 150/200\n"
            "1776144165.577 quantized_ttt_phased val_loss:2.77167493 val_bpb:1.07300174 eval_time:515324ms\n")
    run = parse_log(text)
    assert (run.seed, run.world_size, run.val_token_count, run.format_family) == (3, 8, 40_540_160, "hparams")
    assert run.steps[0].train_time_ms == 90_000.0 and run.stop_train_time_ms == 590_000.0
    assert run.score().eval_time_ms == 515_324.0


def test_code_first_log_yields_the_script_and_skips_its_lines() -> None:
    code = ('"""A training script."""\nimport os\n\n\ndef main():\n    print(f"final_x val_loss:{1} val_bpb:{2}")\n'
            'final_fake val_loss:9.0 val_bpb:9.0\n\nif __name__ == "__main__":\n    main()\n')
    run = parse_log(code + "\n" + SEPARATOR + "\nRunning Python 3.12\n" + SEPARATOR + "\n" + BASELINE)
    assert run.script == code
    assert run.script_lines == (1, len(code.splitlines()) + 1)
    assert [m.mode for m in run.metrics] == ["final_int8_zlib_roundtrip"]


def test_source_code_block_after_hyperparameters() -> None:
    code = "import os\nimport sys\n\ndef main():\n    pass\n\nmain()\n"
    text = (SEPARATOR + "\nHyperparameters:\n  seed: 5\n  world_size: 8\n" + SEPARATOR + "\nSource code:\n" + SEPARATOR
            + "\n" + code + SEPARATOR + "\nval_tokens: 40540160\nquantized val_loss:2.8 val_bpb:1.1 eval_time:7000ms\n")
    run = parse_log(text)
    assert run.script == code.rstrip("\n") and run.seed == 5 and run.score().mode == "quantized"


@pytest.mark.parametrize("data, problem", [
    ("", "empty"),
    (b"", "empty"),
    (b"\x00\x01\x02\xff" * 2000, "binary"),
    (b"step:1/2 train_loss:3.0 train_time:1ms\n\xff\xfe bad bytes\n", "not valid UTF-8"),
    ("just some text\nwithout any metric\n", "no final metric"),
    ("final_int8_zlib_roundtrip val_loss:", "no final metric"),
])
def test_malformed_logs_give_a_problem_not_an_exception(data, problem) -> None:
    run = parse_log(data)
    assert any(problem in p for p in run.problems), run.problems
    assert run.score() is None


def test_nan_metric_and_truncated_last_line() -> None:
    run = parse_log("final_int8_zlib_roundtrip val_loss:nan val_bpb:nan eval_time:1ms\nfinal_int6_sliding_win")
    [metric] = run.metrics
    assert math.isnan(metric.val_bpb) and run.line_count == 2


def test_missing_file_is_a_problem(tmp_path: Path) -> None:
    run = parse_log(tmp_path / "absent.log")
    assert any("cannot read" in p for p in run.problems)


def test_several_runs_in_one_file_describe_the_last() -> None:
    second = BASELINE.replace("seed:7", "seed:8").replace("1.52345678", "1.42345678")
    run = parse_log(BASELINE + second)
    assert run.seed == 8 and run.score().val_bpb == 1.42345678
    assert any("2 runs" in p for p in run.problems)


def test_a_large_log_parses(tmp_path: Path) -> None:
    steps = "".join(f"step:{i}/100000 train_loss:2.5 train_time:{i}ms step_avg:1.00ms\n" for i in range(1, 100_001))
    path = tmp_path / "big.log"
    path.write_text(BASELINE + steps * 2)
    run = parse_log(path)
    assert len(run.steps) == 200_001 and run.byte_count > 10_000_000
