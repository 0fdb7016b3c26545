"""`harness run-seeds` from the command line: argument errors, the table, failures, --record."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from fake_runs import FAKE_CODE_BYTES, make_fake_data, make_fake_submission

from harness.cli import main
from harness.rules import ARTIFACT_CAP_BYTES


@pytest.fixture
def fake(tmp_path, monkeypatch):
    """Fake submission and data; the CLI's paths are relative to tmp_path (cwd), as a user's would be."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "200")  # rich wraps tables at 80 columns when not on a terminal
    make_fake_submission(tmp_path)
    make_fake_data(tmp_path)
    return ["run-seeds", "--submission", "fake_submission", "--data", "data/datasets/tiny_sp1024",
            "--out", "out", "--env", "VOCAB_SIZE=1024"]


def one_line_error(capsys) -> str:
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    return lines[0]


def table_rows(out: str) -> list[list[str]]:
    """The cells of each body row of the rich results table."""
    return [[cell.strip() for cell in line.split("│")[1:-1]] for line in out.splitlines() if line.startswith("│")]


@pytest.mark.parametrize("change, message", [
    (["--seeds", "1,x"], "--seeds must be comma-separated non-negative integers such as 1337,42,2025, got '1,x'"),
    (["--seeds", "1,,2"], "--seeds must be comma-separated"),
    (["--seeds", "7,7"], "--seeds lists a seed twice: '7,7'"),
    (["--submission", "nowhere"], "nowhere: no such submission folder"),
    (["--submission", "data"], "data: holds no train_gpt.py to run"),
    (["--data", "missing"], "missing: no such dataset folder"),
    (["--data", "data/tokenizers"], "data/tokenizers: holds no fineweb_train_*.bin shards"),
    (["--tokenizer", "none.model"], "none.model: no such tokenizer file"),
    (["--env", "SEED=3"], "--env cannot set SEED: the runner sets it for each seed (use --seeds)"),
    (["--env", "NOEQUALS"], "--env takes KEY=VALUE with KEY a variable name, got 'NOEQUALS'"),
    (["--nproc", "0"], "--nproc must be at least 1, got 0"),
    (["--timeout", "0"], "--timeout must be a positive number of seconds, got 0"),
    (["--record", "../escape"], "--record takes a folder name (it goes under --record-dir), got '../escape'"),
])
def test_bad_input_is_one_line_and_exit_2(fake, capsys, change, message):
    argv = fake + ["--seeds", "1"]
    for flag, value in zip(change[::2], change[1::2]):
        if flag in argv:
            argv[argv.index(flag) + 1] = value
        else:
            argv += [flag, value]
    assert main(argv) == 2
    assert message in one_line_error(capsys)
    assert not Path("out").exists()  # nothing ran


def test_unreadable_tokenizer_stops_before_any_seed(fake, capsys, tmp_path):
    argv = [word for word in fake if word not in ("--env", "VOCAB_SIZE=1024")]
    assert main(argv + ["--seeds", "1"]) == 2
    assert "tiny_1024_bpe.model: not a readable SentencePiece model" in one_line_error(capsys)
    assert not (tmp_path / "out").exists()


def test_existing_record_is_refused_before_running(fake, capsys, tmp_path):
    (tmp_path / "submissions" / "taken").mkdir(parents=True)
    assert main(fake + ["--seeds", "1", "--record", "taken"]) == 2
    assert "submissions/taken: already exists" in one_line_error(capsys)
    assert not (tmp_path / "out").exists()


def test_run_prints_table_with_mean_and_std_and_writes_record(fake, capsys, tmp_path):
    assert main(fake + ["--seeds", "1,2", "--env", "ITERATIONS=10", "--record", "fake_rec"]) == 0
    captured = capsys.readouterr()
    out = captured.out
    assert "seed 1 (1/2): started" in captured.err and "seed 2: done in" in captured.err
    rows = {cells[0]: cells for cells in table_rows(out)}
    assert rows["2"] == ["2", "ok", "1.50002000", "3.00020000", "10", "0.1", str(1002 + FAKE_CODE_BYTES)]
    assert rows["mean"][:4] == ["mean", "2/2 ok", "1.50001500", "3.00015000"]
    assert rows["std"][2:4] == ["0.00000707", "0.00007071"]  # sample standard deviations
    record = tmp_path / "submissions" / "fake_rec"
    assert "record written: submissions/fake_rec" in out
    assert sorted(p.name for p in record.iterdir()) == [
        "README.md", "submission.json", "train_gpt.py", "train_seed1.log", "train_seed2.log"]
    readme = (record / "README.md").read_text()
    assert ("harness run-seeds --seeds 1,2 --submission fake_submission --data data/datasets/tiny_sp1024 "
            "--env VOCAB_SIZE=1024 --env ITERATIONS=10 --record fake_rec") in readme
    rerun = ("harness run-seeds --seeds 1,2 --submission submissions/fake_rec --data data/datasets/tiny_sp1024 "
             "--env VOCAB_SIZE=1024 --env ITERATIONS=10")
    assert rerun in readme
    # The rerun line works: it runs the record's own train_gpt.py and gets the same scores.
    assert main(rerun.split()[1:] + ["--out", "rerun"]) == 0
    rows = {cells[0]: cells for cells in table_rows(capsys.readouterr().out)}
    assert rows["2"][2:4] == ["1.50002000", "3.00020000"]

    # Run again: both seeds are reused, nothing reruns, the table is the same.
    assert main(fake + ["--seeds", "1,2", "--env", "ITERATIONS=10"]) == 0
    again = capsys.readouterr()
    assert "seed 1: already completed, reused" in again.err and "started" not in again.err
    assert [cells[1] for cells in table_rows(again.out)[:2]] == ["reused", "reused"]


def test_failed_seed_shows_its_tail_exit_1_and_no_record(fake, capsys, tmp_path):
    code = main(fake + ["--seeds", "1,2,3", "--env", "FAKE_FAIL_SEEDS=2", "--record", "never"])
    assert code == 1
    captured = capsys.readouterr()
    out = captured.out
    assert "seed 2: failed: exited with status 1" in captured.err
    assert "  RuntimeError: fake failure for seed 2" in out  # the tail of its log
    rows = {cells[0]: cells for cells in table_rows(out)}
    assert rows["2"][1:4] == ["failed", "–", "–"] and rows["mean"][1] == "2/3 ok"
    assert "no record written: not every seed completed" in out
    assert not (tmp_path / "submissions" / "never").exists()
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["completed"] == [1, 3] and summary["failed"] == [2]


# ---- end to end with the real reference trainer on a tiny slice of the example dataset ----------------

REFERENCE = Path(__file__).resolve().parents[1] / "reference_train" / "train_gpt.py"
# A model and run small enough for seconds per seed on 2 CPU cores; the batch splits into the default
# 8 accumulation steps of whole 64-token sequences.
TINY_RUN = ["NUM_LAYERS=1", "MODEL_DIM=32", "NUM_HEADS=2", "NUM_KV_HEADS=1", "TRAIN_SEQ_LEN=64",
            "TRAIN_BATCH_TOKENS=512", "ITERATIONS=2", "WARMUP_STEPS=0", "WARMDOWN_ITERS=2", "VAL_LOSS_EVERY=0",
            "MAX_WALLCLOCK_SECONDS=0"]


@pytest.fixture(scope="module")
def tiny_example(tmp_path_factory) -> Path:
    """The first 20,000 training and 1,025 validation tokens of the bundled example, with its tokenizer."""
    from harness.data.location import example_dataset
    from harness.data.shards import (load_tokens, make_manifest, shard_name, shard_record, tokenizer_record,
                              write_manifest, write_shard)

    example = example_dataset(tmp_path_factory.mktemp("example"))
    root = tmp_path_factory.mktemp("tiny")
    dataset = root / "datasets" / "tiny_example_sp1024"
    dataset.mkdir(parents=True)
    (root / "tokenizers").mkdir()
    shutil.copy(example.tokenizer_path, root / "tokenizers" / example.tokenizer_path.name)
    write_shard(dataset / shard_name("train", 0), load_tokens(example.dataset_dir, "train")[:20_000])
    write_shard(dataset / shard_name("val", 0), load_tokens(example.dataset_dir, "val")[:1_025])
    tokenizer = tokenizer_record(root / "tokenizers" / example.tokenizer_path.name,
                                 f"../../tokenizers/{example.tokenizer_path.name}")
    shards = [shard_record(dataset / shard_name(split, 0), split) for split in ("val", "train")]
    write_manifest(dataset, make_manifest(dataset.name, tokenizer, shards, {}, {"tool": "the test's slicer"}))
    return dataset


@pytest.mark.slow
def test_reference_trainer_end_to_end_resumes_after_an_interrupted_seed(tiny_example, tmp_path, monkeypatch, capsys):
    if not REFERENCE.is_file():
        pytest.skip("reference_train/train_gpt.py is not there yet")
    from harness.pipeline import check
    from harness.findings import FAIL

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "200")
    argv = ["run-seeds", "--seeds", "1,2", "--data", str(tiny_example), "--out", "out", "--timeout", "120"]
    for pair in TINY_RUN:
        argv += ["--env", pair]
    assert main(argv) == 0, capsys.readouterr()
    first = {cells[0]: cells for cells in table_rows(capsys.readouterr().out)}
    assert first["1"][1] == first["2"][1] == "ok" and first["1"][4] == "2"  # 2 steps
    seed_2 = json.loads((tmp_path / "out" / "seed_2.json").read_text())
    assert seed_2["metric"] == "final_int8_zlib_roundtrip_exact" and 0 < seed_2["val_bpb"] < 10
    assert seed_2["bytes_total"] == seed_2["total_bytes_measured"] < ARTIFACT_CAP_BYTES  # code + model, as logged

    # Interrupted seed 2: its result json never got written. The rerun redoes it alone, identically.
    (tmp_path / "out" / "seed_2.json").unlink()
    assert main(argv + ["--record", "tiny_rec"]) == 0
    captured = capsys.readouterr()
    assert "seed 1: already completed, reused" in captured.err and "seed 2 (2/2): started" in captured.err
    assert json.loads((tmp_path / "out" / "seed_2.json").read_text())["val_bpb"] == pytest.approx(
        seed_2["val_bpb"], abs=1e-6)
    readme = (tmp_path / "submissions" / "tiny_rec" / "README.md").read_text()
    assert "| `fineweb_val_000000.bin` | val | 1025 | `" in readme  # the data, identified by its manifest
    # The record it wrote passes the static checks.
    verdict = check(str(tmp_path / "submissions" / "tiny_rec"))
    assert verdict.outcome != FAIL, [f.message for f in verdict.findings if f.status == FAIL]
