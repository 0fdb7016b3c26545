"""Claims against evidence: generated folders with one thing wrong at a time, real record folders with
their known quirks pinned, and malformed submission.json values giving readable findings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness import rules
from harness.check.claims import check_claims, claim_measurements
from harness.submission.logs import SEPARATOR, parse_submission_logs
from harness.submission.scores import claim_tolerance, claimed_values
from harness.submission.folder import load_submission

CODE = 'import os\n\n\ndef main():\n    print("train")\n\n\nif __name__ == "__main__":\n    main()\n'
SEEDS = {1337: (1.1001, 1.8501), 42: (1.1003, 1.8503), 2025: (1.1005, 1.8505)}


def make_log(seed: int, bpb: float, loss: float, *, world_size: int = 8, train_ms: float = 590_000.0,
             step_avg: float = 80.0, eval_ms: float = 80_000.0, model: int = 15_800_000, code: int = len(CODE),
             val_tokens: int = min(rules.KNOWN_VAL_TOKEN_COUNTS),
             script: str | None = None) -> str:
    head = (script + "\n" + SEPARATOR + "\n") if script is not None else ""
    return head + (
        f"val_loader:shards pattern=./data/datasets/fineweb10B_sp1024/fineweb_val_*.bin tokens:{val_tokens}\n"
        f"world_size:{world_size} grad_accum_steps:1\nseed:{seed}\n"
        f"step:7000/20000 train_loss:2.0000 train_time:{train_ms - 100:.0f}ms step_avg:{step_avg:.2f}ms\n"
        f"stopping_early: wallclock_cap train_time:{train_ms:.0f}ms step:7001/20000\n"
        f"Serialized model int6+zstd: {model} bytes\nCode size: {code} bytes\n"
        f"Total submission size int6+zstd: {model + code} bytes\n"
        f"final_int6_sliding_window val_loss:{loss:.4f} val_bpb:{bpb:.4f} stride:64 eval_time:{eval_ms:.0f}ms\n"
        f"final_int6_sliding_window_exact val_loss:{loss:.8f} val_bpb:{bpb:.8f}\n")


def write_folder(root: Path, metadata: dict | str | None, logs: dict[str, str], *, track: str = rules.RECORD_TRACK,
                 code: str | None = CODE, extra: dict[str, str] | None = None) -> Path:
    folder = root / "records" / track / "2026-05-01_Test"
    folder.mkdir(parents=True)
    (folder / "README.md").write_text("# test\n")
    if metadata is not None:
        (folder / "submission.json").write_text(metadata if isinstance(metadata, str) else json.dumps(metadata))
    if code is not None:
        (folder / rules.COUNTED_CODE_FILE).write_text(code)
    for name, text in {**logs, **(extra or {})}.items():
        (folder / name).write_text(text)
    return folder


def three_seed_logs(**options) -> dict[str, str]:
    return {f"train_seed{seed}.log": make_log(seed, bpb, loss, **options) for seed, (bpb, loss) in SEEDS.items()}


def good_metadata(**changes) -> dict:
    metadata = {"name": "t", "github_id": "t", "val_bpb": 1.1003, "val_loss": 1.8503, "seeds": list(SEEDS),
                "bytes_total": 15_800_000 + len(CODE), "bytes_code": len(CODE)}
    metadata.update(changes)
    return {k: v for k, v in metadata.items() if v is not None}


def findings(folder: Path) -> dict[str, list]:
    submission = load_submission(folder)
    result: dict[str, list] = {}
    for item in check_claims(submission, parse_submission_logs(submission)):
        result.setdefault(item.check, []).append(item)
    return result


def status(found: dict[str, list], check: str) -> list[str]:
    return [f.status for f in found.get(check, [])]


def test_a_good_three_seed_record_passes_every_check(tmp_path: Path) -> None:
    found = findings(write_folder(tmp_path, good_metadata(), three_seed_logs()))
    for check in ("claims.val_bpb", "claims.val_loss", "claims.bytes_code", "claims.bytes_total", "claims.size_cap",
                  "budget.train_time", "budget.eval_time", "claims.hardware", "data.val_tokens", "claims.seeds",
                  "logs.parse"):
        assert status(found, check) == ["pass"], (check, [f.message for f in found.get(check, [])])
    assert "mean of final_int6_sliding_window over 3 runs" in found["claims.val_bpb"][0].message
    assert status(found, "claims.provenance") == ["skip"] and status(found, "claims.bytes_model") == ["skip"]


def test_measurements_give_per_run_scores_and_means(tmp_path: Path) -> None:
    folder = write_folder(tmp_path, good_metadata(), three_seed_logs())
    submission = load_submission(folder)
    numbers = claim_measurements(submission, parse_submission_logs(submission))
    assert numbers["score"]["mode"] == "final_int6_sliding_window" and numbers["score"]["runs"] == 3
    assert numbers["score"]["mean_val_bpb"] == pytest.approx(1.1003, abs=1e-12)
    assert numbers["score"]["std_val_bpb"] == pytest.approx(0.0002, abs=1e-12)
    assert numbers["logs"]["train_seed42.log"]["train_time_s"] == 590.0


@pytest.mark.parametrize("claimed, expected", [(1.1003, "mean"), (1.1008, None), (1.100, "mean"), (1.099, None),
                                               (1.1005, "single")])
def test_claimed_mean_within_tolerance(tmp_path: Path, claimed: float, expected: str | None) -> None:
    # 1.100 is written with three decimals: it stands for 1.0995..1.1005, so the 3-run mean 1.1003 is
    # preferred over the closer single run 1.1001; 1.1005 is exactly one run's value
    found = findings(write_folder(tmp_path, good_metadata(val_bpb=claimed, val_loss=None), three_seed_logs()))
    [item] = found["claims.val_bpb"]
    assert item.status == ("fail" if expected is None else "pass")
    if expected == "mean":
        assert "the mean of final_int6_sliding_window over 3 runs" in item.message
    if expected == "single":
        assert "train_seed2025.log:10" in item.message


def test_claim_tolerance_follows_the_written_decimals() -> None:
    assert claim_tolerance(1.22436570) == rules.CLAIM_TOLERANCE_BPB
    assert claim_tolerance(1.081) == pytest.approx(5e-4)


def test_a_single_log_claim_names_its_line(tmp_path: Path) -> None:
    logs = {"train.log": make_log(1337, 1.2, 2.0)}
    found = findings(write_folder(tmp_path, good_metadata(val_bpb=1.2, val_loss=2.0, seeds=None), logs))
    [item] = found["claims.val_bpb"]
    assert item.status == "pass" and "train.log:10 (final_int6_sliding_window)" in item.message
    assert item.evidence[0].line == 10
    assert status(found, "claims.seeds") == ["warn"]  # one seed on the record track (R5.1: usually 3)


def test_per_seed_values_are_matched_to_their_logs(tmp_path: Path) -> None:
    per_seed = {str(seed): {"val_bpb": bpb} for seed, (bpb, _) in SEEDS.items()}
    per_seed["42"]["val_bpb"] = 1.2003
    found = findings(write_folder(tmp_path, good_metadata(seed_results=per_seed), three_seed_logs()))
    per_seed_finding = [f for f in found["claims.val_bpb"] if "per-seed" in f.message]
    assert [f.status for f in per_seed_finding] == ["fail"]
    assert "seed(s) 42 differ" in per_seed_finding[0].message


def test_a_claim_no_log_supports_fails_with_the_logged_values(tmp_path: Path) -> None:
    found = findings(write_folder(tmp_path, good_metadata(val_bpb=1.05), three_seed_logs()))
    [item] = found["claims.val_bpb"]
    assert item.status == "fail" and "matches no log: the logs give 1.1003" in item.message
    assert len(item.evidence) == 3


@pytest.mark.parametrize("model, expected", [(rules.ARTIFACT_CAP_BYTES - len(CODE) - 1, "pass"),
                                             (rules.ARTIFACT_CAP_BYTES - len(CODE), "warn"),
                                             (rules.ARTIFACT_CAP_BYTES - len(CODE) + 1, "fail")])
def test_size_cap_is_decimal_and_strict(tmp_path: Path, model: int, expected: str) -> None:
    found = findings(write_folder(tmp_path, good_metadata(bytes_total=None), three_seed_logs(model=model)))
    assert status(found, "claims.size_cap") == [expected]


def test_bytes_claims_against_the_folder_and_the_logs(tmp_path: Path) -> None:
    metadata = good_metadata(bytes_code=len(CODE) + 1, bytes_total=15_000_000, bytes_model_int6_zstd=15_800_001)
    found = findings(write_folder(tmp_path, metadata, three_seed_logs()))
    assert status(found, "claims.bytes_code") == ["fail"]
    assert status(found, "claims.bytes_model") == ["fail"]
    assert sorted(status(found, "claims.bytes_total")) == ["fail", "fail"]  # no log; and not code + model


def test_logged_code_size_differing_from_the_file_warns(tmp_path: Path) -> None:
    found = findings(write_folder(tmp_path, good_metadata(bytes_code=None, bytes_total=None),
                                  three_seed_logs(code=len(CODE) + 7)))
    [item] = found["claims.bytes_code"]
    assert item.status == "warn" and "the script changed after the run" in item.message


@pytest.mark.parametrize("train_ms, expected", [(600_000.0, "pass"), (600_150.0, "pass"), (600_200.0, "fail")])
def test_train_time_allows_the_final_steps_overshoot(tmp_path: Path, train_ms: float, expected: str) -> None:
    # step_avg 80 ms: up to rules.TRAIN_OVERSHOOT_STEPS steps (160 ms) past the cap pass
    found = findings(write_folder(tmp_path, good_metadata(), three_seed_logs(train_ms=train_ms)))
    assert status(found, "budget.train_time") == [expected]


def test_non_record_track_skips_time_and_hardware(tmp_path: Path) -> None:
    folder = write_folder(tmp_path, good_metadata(), three_seed_logs(train_ms=3_600_000.0, world_size=1),
                          track=rules.NON_RECORD_TRACK)
    found = findings(folder)
    assert status(found, "budget.train_time") == ["skip"] and status(found, "claims.hardware") == ["skip"]
    assert "world_size 1" in found["claims.hardware"][0].message


def test_eval_time_and_world_size_on_the_record_track(tmp_path: Path) -> None:
    found = findings(write_folder(tmp_path, good_metadata(hardware="8xH100 SXM"),
                                  three_seed_logs(eval_ms=600_001.0, world_size=4)))
    assert status(found, "budget.eval_time") == ["fail"]
    [item] = found["claims.hardware"]
    assert item.status == "fail" and "world_size 4" in item.message


def test_claimed_hardware_other_than_8xh100_fails(tmp_path: Path) -> None:
    found = findings(write_folder(tmp_path, good_metadata(hardware="1xRTX5090"), three_seed_logs()))
    assert status(found, "claims.hardware") == ["fail"]


def test_provenance_exact_edited_and_other_file(tmp_path: Path) -> None:
    edited = CODE.replace('print("train")', 'os.system("train")')  # changes what runs (a print would not)
    logs = {"train_seed1337.log": make_log(1337, 1.1001, 1.8501, script=CODE),
            "train_seed42.log": make_log(42, 1.1003, 1.8503, script=edited),
            "train_seed2025.log": make_log(2025, 1.1005, 1.8505, script="import sys\n" + CODE)}
    found = findings(write_folder(tmp_path, good_metadata(), logs, extra={"helper.py": "import sys\n" + CODE}))
    by_status = {f.status: f for f in found["claims.provenance"]}
    assert sorted(by_status) == ["fail", "pass", "warn"]
    values = by_status["fail"].evidence[0].values
    assert (values["lines_added"], values["lines_removed"], values["first_differing_line"]) == (1, 1, 5)
    assert by_status["fail"].evidence[0].line == 5 and "os.system" in by_status["fail"].evidence[0].excerpt
    assert "embeds helper.py" in by_status["warn"].message


def test_validation_token_counts(tmp_path: Path) -> None:
    logs = three_seed_logs()
    logs["train_seed42.log"] = make_log(42, 1.1003, 1.8503, val_tokens=61_997_056)  # 62,021,632 in 32,768-windows
    found = findings(write_folder(tmp_path, good_metadata(), logs))
    [item] = found["data.val_tokens"]
    assert item.status == "warn" and "different validation token counts" in item.message
    found = findings(write_folder(tmp_path / "b", good_metadata(), three_seed_logs(val_tokens=12_345)))
    assert status(found, "data.val_tokens") == ["warn"] and "12,345" in found["data.val_tokens"][0].message


def test_log_named_for_another_seed_warns(tmp_path: Path) -> None:
    logs = three_seed_logs()
    logs["train_seed42.log"] = make_log(1337, 1.1003, 1.8503)
    found = findings(write_folder(tmp_path, good_metadata(val_bpb=None, val_loss=None), logs))
    [item] = found["claims.seeds"]
    assert item.status == "warn" and "train_seed42.log is named for seed 42 but logs seed 1337" in item.message


# -- malformed submission.json ------------------------------------------------------------------------

@pytest.mark.parametrize("changes, check, text", [
    ({"val_bpb": "1.1003"}, "claims.val_bpb", "val_bpb is a string, not a number"),
    ({"val_loss": -1.0}, "claims.val_loss", "val_loss is -1.0; it must be positive"),
    ({"bytes_total": -5}, "claims.bytes_total", "bytes_total is -5; it must be zero or more"),
    ({"bytes_code": 1.5}, "claims.bytes_code", "bytes_code is 1.5; a byte count is a whole number"),
    ({"val_bpb": True}, "claims.val_bpb", "val_bpb is true/false, not a number"),
])
def test_wrong_types_and_negative_values_fail_readably(tmp_path: Path, changes, check, text) -> None:
    found = findings(write_folder(tmp_path, good_metadata(**changes), three_seed_logs()))
    assert any(f.status == "fail" and text in f.message for f in found[check]), [f.message for f in found[check]]


def test_truncated_json_skips_claims_with_the_reason(tmp_path: Path) -> None:
    found = findings(write_folder(tmp_path, '{"val_bpb": 1.10', three_seed_logs()))
    [item] = found["claims.val_bpb"]
    assert item.status == "skip" and "line 1" in item.message
    assert status(found, "budget.train_time") == ["pass"]  # the logs are still judged


def test_missing_keys_and_no_logs(tmp_path: Path) -> None:
    found = findings(write_folder(tmp_path, {"name": "t"}, {}))
    assert status(found, "claims.val_bpb") == ["skip"] and status(found, "logs.parse") == ["skip"]
    assert status(found, "claims.size_cap") == ["skip"]


def test_claimed_values_never_raise_on_odd_shapes() -> None:
    claims = claimed_values({"seed_results": {"x": 1, "7": {"val_bpb": "a"}}, "seeds": "abc", "seed_scores": [1],
                             "val_bpb": float("nan"), "bytes_model_compressed": 10})
    assert claims.val_bpb is None and claims.bytes_model == ("bytes_model_compressed", 10)
    assert claims.per_seed == {7: {}} and claims.seeds == [7]
    assert any("val_bpb is nan" in p for p in claims.problems)
    assert claimed_values(["not", "a", "dict"]).problems == []


# -- real record folders -------------------------------------------------------------------------------

def fixture_findings(fixture_records: Path, relpath: str) -> dict[str, list]:
    return findings(fixture_records / relpath)


def test_every_fixture_folder_gets_every_check(fixture_records: Path) -> None:
    folders = sorted(p for p in fixture_records.glob("*/*") if p.is_dir())
    assert len(folders) >= 55
    for folder in folders:
        found = findings(folder)
        for check in ("claims.val_bpb", "claims.size_cap", "budget.train_time", "claims.provenance",
                      "data.val_tokens", "claims.seeds"):
            assert check in found, (folder.name, check)


def test_naive_baseline_claim_is_its_roundtrip_line(fixture_records: Path) -> None:
    found = fixture_findings(fixture_records, "track_10min_16mb/2026-03-17_NaiveBaseline")
    [item] = found["claims.val_bpb"]
    assert item.status == "pass" and "train.log:448 (final_int8_zlib_roundtrip) = 1.2243657" in item.message
    assert status(found, "budget.train_time") == ["pass"]  # 600.038 s: 38 ms past, within the final step
    assert status(found, "data.val_tokens") == ["pass"]  # 63,779,840: the first sp1024 export


def test_rerun_folder_matches_the_original_runs_per_seed(fixture_records: Path) -> None:
    found = fixture_findings(fixture_records, "track_10min_16mb/2026-04-29_SmearGateBOSFix_3Seed_1.06141")
    assert status(found, "claims.val_bpb") == ["pass", "pass"]
    assert "train_seed42_pr1851_original.log" in found["claims.val_bpb"][0].message


def test_known_quirks_of_accepted_records(fixture_records: Path) -> None:
    legendre = fixture_findings(fixture_records, "track_non_record_16mb/2026-03-31_LegendreGPT")
    assert status(legendre, "claims.val_bpb") == ["fail", "pass"]  # claims 1.2266, the log's roundtrip says 1.2353
    assert "pre_quant_val_bpb 1.2079" in legendre["claims.val_bpb"][1].message  # the last in-training value
    hessian = fixture_findings(fixture_records, "track_10min_16mb/2026-04-06_SP8192_HessianSDClip_ProgressiveRecurrence")
    assert status(hessian, "claims.size_cap") == ["fail"]  # its logs total 16,054,963+ bytes
    copied = fixture_findings(fixture_records, "track_10min_16mb/2026-04-08_SP8192_ParallelResid_ScoreFirstTTT")
    assert sorted(f.message.split(":")[0] for f in copied["claims.bytes_total"] if f.status == "fail") == [
        "seed 314", "seed 999"]  # the same artifact_bytes written for three seeds
    adapter = fixture_findings(fixture_records, "track_non_record_16mb/2026-04-30_Random_Linear_Adapter")
    assert "train_seed_2026.txt is named for seed 2026 but logs seed 1337" in adapter["claims.seeds"][0].message
    int5 = fixture_findings(fixture_records, "track_10min_16mb/2026-03-20_10L_Int5MLP_MuonWD04_SWA50")
    [item] = int5["claims.val_loss"]  # its val_loss key holds the mean val_bpb of its three seeds
    assert item.status == "warn" and "is a val_bpb value" in item.message and "wrong key" in item.message
