"""Record folders written by harness/reproduce/record.py from run-seeds results (with the fake train script)."""

from __future__ import annotations

import json

import pytest
from fake_runs import FAKE_CODE_BYTES, FAKE_SCRIPT, make_plan

from harness.errors import UserError
from harness.reproduce.record import RecordInfo, write_record
from harness.reproduce.runner import run_seeds
from harness.schemas import validation_errors

COMMAND = "harness run-seeds --seeds 1,2 --env ITERATIONS=20 --record fake_record"
RERUN = "harness run-seeds --seeds 1,2 --submission submissions/fake_record --env ITERATIONS=20"


@pytest.fixture
def fake_record(tmp_path):
    plan = make_plan(tmp_path, env={"ITERATIONS": "20"})
    results = run_seeds(plan, [1, 2])
    info = RecordInfo(name="fake_record", command=COMMAND, rerun=RERUN, source="the fake trainer")
    return write_record(tmp_path / "submissions" / "fake_record", plan, results, info), plan, results, info


def test_record_holds_the_challenge_files(fake_record):
    folder, _, _, _ = fake_record
    assert sorted(p.name for p in folder.iterdir()) == [
        "README.md", "submission.json", "train_gpt.py", "train_seed1.log", "train_seed2.log"]
    assert (folder / "train_gpt.py").read_bytes() == FAKE_SCRIPT.read_bytes()
    # Each log is the script's own log: source first, then its lines, ending with the score.
    log = (folder / "train_seed2.log").read_text()
    assert log.startswith(FAKE_SCRIPT.read_text())
    assert log.rstrip().endswith("final_int8_zlib_roundtrip_exact val_loss:3.00020000 val_bpb:1.50002000")


def test_submission_json_is_schema_valid_with_per_seed_results(fake_record):
    folder, _, _, _ = fake_record
    metadata = json.loads((folder / "submission.json").read_text())
    assert validation_errors(metadata, "submission") == []
    assert metadata["name"] == "fake_record" and metadata["track"] == "non_record_16mb"
    assert metadata["val_bpb"] == pytest.approx(1.500015, abs=1e-12)
    assert metadata["val_loss"] == pytest.approx(3.00015, abs=1e-12)
    assert metadata["val_bpb_std"] == 0.00000707  # sample std of 1.50001, 1.50002, to 8 decimals
    assert metadata["seeds"] == [1, 2]
    assert metadata["seed_results"]["2"] == {"val_bpb": 1.50002, "val_loss": 3.0002,
                                             "bytes_total": 1002 + FAKE_CODE_BYTES, "steps": 20,
                                             "train_time_ms": 200}
    assert metadata["bytes_total"] == 1002 + FAKE_CODE_BYTES  # the larger of the seeds
    assert metadata["bytes_code"] == FAKE_CODE_BYTES
    assert metadata["val_bpb_method"] == "final_int8_zlib_roundtrip_exact"


def test_readme_says_how_to_reproduce(fake_record):
    folder, _, _, _ = fake_record
    readme = (folder / "README.md").read_text()
    assert readme.startswith("# fake_record\n")
    assert f"```bash\n{RERUN}\nharness check {folder}\n```" in readme
    assert f"This folder was written by:\n\n```bash\n{COMMAND}\n```" in readme
    assert "| 2 | 1.50002000 | 3.00020000 | 20 | 0.2 s | 0 s |" in readme
    assert "| `ITERATIONS` | `20` |" in readme
    assert "mean ± std | 1.50001500 ± 0.00000707" in readme
    assert "Dataset `tiny_sp1024`, tokenizer `tiny_1024_bpe.model`.\nIt has no manifest.json" in readme


def test_existing_record_folder_is_refused(fake_record):
    folder, plan, results, info = fake_record
    with pytest.raises(UserError, match="already exists"):
        write_record(folder, plan, results, info)


def test_failed_seeds_make_no_record(tmp_path):
    plan = make_plan(tmp_path, env={"FAKE_FAIL_SEEDS": "2"})
    results = run_seeds(plan, [1, 2])
    with pytest.raises(ValueError, match="completed seeds only"):
        write_record(tmp_path / "rec", plan, results, RecordInfo(name="rec", command="x", rerun="z", source="y"))
    assert not (tmp_path / "rec").exists()
