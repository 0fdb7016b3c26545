"""The seed runner (harness/reproduce/runner.py) with a fake train_gpt.py: layout, env, results, failures, resume."""

from __future__ import annotations

import json
import sys

import pytest
from fake_runs import FAKE_CODE_BYTES, FAKE_SCRIPT, counter_socket, make_plan, runs_of

from harness.reproduce import runner
from harness.errors import UserError
from harness.reproduce.runner import completed_result, run_seeds


def test_success_records_scores_sizes_and_layout(tmp_path, monkeypatch):
    monkeypatch.setenv("PGOLF_TEST_SECRET", "must-not-leak")
    plan = make_plan(tmp_path)
    results = run_seeds(plan, [1, 2])

    assert [r.status for r in results] == ["ok", "ok"]
    first = results[0]
    assert first.val_bpb == pytest.approx(1.50001, abs=1e-12)
    assert first.val_loss == pytest.approx(3.0001, abs=1e-12)
    assert first.metric == "final_int8_zlib_roundtrip_exact"
    assert (first.steps, first.train_time_ms) == (20, 200)
    assert first.artifact == "seed_1/final_model.int8.ptz" and first.artifact_bytes == 1001
    assert first.total_bytes_measured == 1001 + FAKE_CODE_BYTES
    assert first.bytes_total == 1001 + FAKE_CODE_BYTES and first.bytes_code == FAKE_CODE_BYTES
    assert results[1].val_bpb == pytest.approx(1.50002, abs=1e-12)
    assert first.log == "seed_1/logs/seed_1.txt"

    work = plan.out_dir / "seed_1"
    # Data linked, not copied, where the script expects it.
    assert (work / "data" / "datasets" / "tiny_sp1024").is_symlink()
    assert (work / "data" / "datasets" / "tiny_sp1024").resolve() == plan.dataset_dir.resolve()
    assert (work / "data" / "tokenizers" / "tiny_1024_bpe.model").resolve() == plan.tokenizer_path.resolve()
    # Code copied; an old run's log, artifact and logs/ left behind.
    assert (work / "helper.py").is_file()
    assert not (work / "logs" / "old_run.txt").exists() and not (work / "train_seed7.log").exists()
    assert (work / "final_model.int8.ptz").stat().st_size == 1001
    # Only our variables reach the script.
    log = (work / "logs" / "seed_1.txt").read_text()
    assert log.startswith(FAKE_SCRIPT.read_text())  # the script's own log, with its source on top
    assert "env_vocab_size:1024 env_home_secret:None" in log
    assert first.env == {"SEED": "1", "RUN_ID": "seed_1", "DATA_PATH": "./data/datasets/tiny_sp1024",
                         "TOKENIZER_PATH": "./data/tokenizers/tiny_1024_bpe.model", "VOCAB_SIZE": "1024",
                         "ITERATIONS": "20", "FAKE_COUNTER_SOCKET": counter_socket(tmp_path)}
    saved = json.loads((plan.out_dir / "seed_2.json").read_text())
    assert saved["status"] == "ok" and saved["val_bpb"] == pytest.approx(1.50002) and "reused" not in saved
    summary = json.loads((plan.out_dir / "summary.json").read_text())
    assert summary["completed"] == [1, 2] and summary["val_bpb_mean"] == pytest.approx(1.500015, abs=1e-12)
    assert summary["val_bpb_std"] == pytest.approx(0.00001 / 2 ** 0.5, rel=1e-6)


def test_failing_seed_is_reported_with_its_tail_and_others_still_run(tmp_path):
    plan = make_plan(tmp_path, env={"FAKE_FAIL_SEEDS": "2", "FAKE_COUNTER_SOCKET": counter_socket(tmp_path)})
    results = run_seeds(plan, [1, 2, 3])
    assert [r.status for r in results] == ["ok", "failed", "ok"]
    failed = results[1]
    assert failed.error == "exited with status 1" and failed.returncode == 1
    assert failed.tail[-1] == "RuntimeError: fake failure for seed 2"
    assert failed.val_bpb is None and failed.artifact is None
    assert json.loads((plan.out_dir / "summary.json").read_text())["failed"] == [2]
    # A failed seed is not complete: the next run of the same configuration retries it, and only it.
    again = run_seeds(plan, [1, 2, 3])
    assert [r.reused for r in again] == [True, False, True]
    assert runs_of(tmp_path) == [1, 2, 3, 2]


def test_timeout_kills_the_run(tmp_path):
    plan = make_plan(tmp_path, env={"FAKE_SLEEP_S": "60"}, timeout_s=1.5)
    [result] = run_seeds(plan, [5])
    assert result.status == "timeout" and result.returncode is None
    assert result.error == "killed after the time limit of 1.5 s"
    assert completed_result(plan.out_dir, 5) is None


def test_finished_without_artifact_is_a_failure(tmp_path):
    plan = make_plan(tmp_path, env={"FAKE_NO_ARTIFACT": "1"})
    [result] = run_seeds(plan, [1])
    assert result.status == "failed" and result.val_bpb == pytest.approx(1.50001)
    assert result.error.startswith("finished but wrote no artifact")


def test_resume_skips_completed_seeds_and_reruns_interrupted_ones(tmp_path):
    plan = make_plan(tmp_path)
    run_seeds(plan, [1, 2])
    assert runs_of(tmp_path) == [1, 2]

    again = run_seeds(plan, [1, 2])
    assert [r.reused for r in again] == [True, True] and runs_of(tmp_path) == [1, 2]
    assert again[1].val_bpb == pytest.approx(1.50002)

    # Interrupted seed: no result json, leftovers in its work dir; rerun from a clean dir.
    (plan.out_dir / "seed_2.json").unlink()
    (plan.out_dir / "seed_2" / "leftover.tmp").write_text("half-written")
    # A completed seed whose artifact vanished is not complete either.
    (plan.out_dir / "seed_1" / "final_model.int8.ptz").unlink()
    third = run_seeds(plan, [1, 2, 3])
    assert [r.reused for r in third] == [False, False, False]
    assert runs_of(tmp_path) == [1, 2, 1, 2, 3]
    assert not (plan.out_dir / "seed_2" / "leftover.tmp").exists()

    forced = run_seeds(plan, [2], force=True)
    assert not forced[0].reused and runs_of(tmp_path)[-1] == 2


def test_out_dir_of_another_configuration_is_refused(tmp_path):
    run_seeds(make_plan(tmp_path), [1])
    changed = make_plan(tmp_path, env={"ITERATIONS": "30", "FAKE_COUNTER_SOCKET": counter_socket(tmp_path)})
    with pytest.raises(UserError, match=r"another configuration \(differs in: env\)"):
        run_seeds(changed, [1])
    assert run_seeds(changed, [1], force=True)[0].steps == 30


def test_torn_result_json_counts_as_not_run(tmp_path):
    plan = make_plan(tmp_path)
    run_seeds(plan, [4])
    (plan.out_dir / "seed_4.json").write_text('{"seed": 4, "status": "ok", "work')
    assert runner.load_result(plan.out_dir, 4) is None
    assert run_seeds(plan, [4])[0].reused is False


def test_several_processes_run_under_torchrun(tmp_path):
    plan = make_plan(tmp_path, nproc=2)
    [result] = run_seeds(plan, [3])
    assert result.ok, result.tail
    assert result.command[1:4] == ["-m", "torch.distributed.run", "--standalone"]
    assert "world_size:2 grad_accum_steps:1" in (plan.out_dir / result.log).read_text()
    assert runs_of(tmp_path) == [3]  # rank 1 started too, but only rank 0 trains and writes


def test_commands_and_env_ownership(tmp_path):
    plan = make_plan(tmp_path)
    assert runner.trainer_command(plan) == [sys.executable, "train_gpt.py"]
    multi = make_plan(tmp_path, nproc=4)
    assert runner.trainer_command(multi) == [sys.executable, "-m", "torch.distributed.run", "--standalone",
                                             "--nproc_per_node=4", "train_gpt.py"]
    # The user's VOCAB_SIZE wins over the tokenizer's, and the tokenizer is then not read at all.
    own_vocab = make_plan(tmp_path, vocab_size=None, env={"VOCAB_SIZE": "4096"})
    assert runner.trainer_env(own_vocab, 9, "tiny_sp1024")["VOCAB_SIZE"] == "4096"


def test_vocab_size_from_a_real_tokenizer(real_tokenizer, tmp_path):
    assert runner.read_vocab_size(real_tokenizer) == 1024
    junk = tmp_path / "junk.model"
    junk.write_text("junk")
    with pytest.raises(UserError, match="not a readable SentencePiece model"):
        runner.read_vocab_size(junk)
