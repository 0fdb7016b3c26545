"""Accepted records of the public challenge repository, scanned where a checkout lies beside the repo
(../upstream/records). Pins the verdicts the scanner reaches on the records the brief names and on the
ones whose findings are real (see the comments)."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.compliance import scan_path

RECORDS = Path(__file__).resolve().parents[2] / "upstream" / "records"
TRACK = RECORDS / "track_10min_16mb"
NON_RECORD = RECORDS / "track_non_record_16mb"


@pytest.fixture(scope="module")
def records() -> Path:
    if not TRACK.is_dir():
        pytest.skip(f"no checkout of the challenge repository at {RECORDS}")
    return RECORDS


@pytest.mark.parametrize("folder,verdict,legal_line", [
    ("track_10min_16mb/2026-03-17_NaiveBaseline", "clean", None),
    ("track_10min_16mb/2026-03-17_LoRA_TTT", "clean_with_legal_ttt", 945),
    ("track_10min_16mb/2026-03-23_LeakyReLU_LegalTTT_ParallelMuon", "clean_with_legal_ttt", 1201),
    # a raw-LZMA2 + base85 wrapper whose payload uses Python 3.12 f-strings
    ("track_10min_16mb/2026-04-06_SP8192_QK5_LegalTTT_1.0828", "clean_with_legal_ttt", 369),
    # exec(open(... "train_gpt_decode.py").read()): the real code is a sibling file
    ("track_10min_16mb/2026-04-06_SP8192_HessianSDClip_ProgressiveRecurrence", "clean_with_legal_ttt", 1535),
    # phased TTT: LoRA score-first per chunk, global SGD on documents already scored
    ("track_10min_16mb/2026-04-14_MultiPhaseGlobalSGD_PhasedTTT", "clean_with_legal_ttt", 2263),
])
def test_accepted_records_are_clean(records: Path, folder: str, verdict: str, legal_line: int | None) -> None:
    report = scan_path(records / folder)
    assert report.verdict == verdict, report.reasons
    if legal_line is not None:
        assert legal_line in {h.line for h in report.hits if h.rule == "ttt_order" and h.outcome == "legal"}


@pytest.mark.parametrize("folder,hit", [
    # compile warm-up: backward/step with a throwaway LoRA on the first validation tokens (#1530, #677);
    # the 2026-04-14 record switched it to random tokens
    ("track_10min_16mb/2026-04-10_VarLenAttn", ("ttt_order", "review", "warmup_on_val", 2759)),
    # an illegal SLOT path (delta fitted on the window's targets), off unless SLOT_ENABLED is set
    ("track_10min_16mb/2026-03-31_ParallelResiduals_MiniDepthRecurrence", ("slot", "review", "slot_before_scoring", 489)),
    # the n-gram tilt is computed by a C++ kernel fed the validation stream; it reads the realised token
    ("track_10min_16mb/2026-04-09_A2_Muon097_3Seed", ("native_code", "review", "native_library", 59)),
    # temperature fitted on training tokens after the artifact round trip (the logs show it ran),
    # behind TEMP_SCALING, default off
    ("track_10min_16mb/2026-03-24_74M_Ternary_UNet_FP8_10L_8192BPE_YaRN_NeoMuon",
     ("train_data_at_eval", "review", "train_data_after_artifact", 1412)),
])
def test_records_with_real_findings_are_for_review(records: Path, folder: str, hit: tuple) -> None:
    report = scan_path(records / folder)
    assert report.verdict == "needs_review"
    assert hit in {(h.rule, h.outcome, h.kind, h.line) for h in report.hits}


def test_a_non_record_reading_training_data_at_evaluation_is_flagged(records: Path) -> None:
    # TEMP_SCALING defaults to on here; its logs show "temp_scaling optimal_T:1.00 (auto)"
    report = scan_path(NON_RECORD / "2026-03-26_37M_LeWM_Jepa_Mamba2_10L_UNet_INT4FP8QAT_Brotli")
    assert report.verdict == "flag"
    assert [(h.rule, h.line) for h in report.hits if h.outcome == "flag"] == [("train_data_at_eval", 1627)]


def test_a_1500_line_record_is_scanned_whole(records: Path) -> None:
    # Its speed is measured by bench/static_speed.py, not asserted here.
    folder = TRACK / "2026-03-20_11L_XSA4_EMA_Int6_MLP3x_WD04_1.1271"  # train_gpt.py: 1,555 lines
    report = scan_path(folder)
    assert report.files[0]["lines"] == 1555