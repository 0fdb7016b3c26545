"""`harness verify`: end to end on the bundled tiny record (CPU), every judgement on fabricated runs, the
attention shim through the worker, and bad input as one line."""

from __future__ import annotations

import json
import shutil
import zlib
from pathlib import Path

import pytest

from harness import pipeline, rules
from harness.cli import main
from harness.findings import FAIL, PASS, SKIP, WARN, Verdict, finding
from harness.judge.budgets import budget_findings
from harness.judge.evidence import Hardware, SeedRun
from harness.judge.runs import run_findings
from harness.judge.scores import claim_finding, own_score_findings, trusted_findings
from harness.judge.sizes import size_findings
from harness.schemas import validation_errors

ROOT = Path(__file__).resolve().parent.parent
TINY_RECORD = ROOT / "submissions" / "2026-11-24_reference_tiny"
CASES = Path(__file__).resolve().parent / "adapter_cases"
# The settings the tiny record was produced with (its README's Configuration table).
TINY_RECORD_ENV = ["NUM_LAYERS=2", "MODEL_DIM=64", "NUM_HEADS=4", "NUM_KV_HEADS=2", "TRAIN_SEQ_LEN=64",
                   "TRAIN_BATCH_TOKENS=1024", "ITERATIONS=50", "WARMUP_STEPS=2", "VAL_BATCH_SIZE=8192",
                   "VAL_LOSS_EVERY=25", "TRAIN_LOG_EVERY=10", "MAX_WALLCLOCK_SECONDS=0", "WARMDOWN_ITERS=10"]


def env_args(pairs: list[str]) -> list[str]:
    return [word for pair in pairs for word in ("--env", pair)]


def statuses(verdict: dict, check: str) -> list[str]:
    return [f["status"] for f in verdict["findings"] if f["check"] == check]


# ---- end to end ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny_verified(tmp_path_factory):
    """Seed 1337 alone first (then interrupted, as it were), then seeds 1337 and 42: the second call must
    reuse the first seed's run and evaluation. The first runs the legality probe on a short stream, the
    second leaves it out (tests/test_probe.py tests the probe itself)."""
    out = tmp_path_factory.mktemp("verify") / "tiny"
    first = main(["verify", str(TINY_RECORD), "--seeds", "1337", "--out", str(out), "--json", "--probe-tokens", "8193",
                  *env_args(TINY_RECORD_ENV)])
    shutil.copyfile(out / "verdict.json", out / "first_verdict.json")
    seed_json = out / "runs" / "seed_1337.json"
    stamp = seed_json.stat().st_mtime_ns
    second = main(["verify", str(TINY_RECORD), "--seeds", "1337,42", "--out", str(out), "--json", "--no-probe",
                   "--markdown", str(out / "comment.md"), *env_args(TINY_RECORD_ENV)])
    return first, second, out, stamp


def test_the_tiny_record_is_reproduced_and_judged(tiny_verified):
    first, second, out, _ = tiny_verified
    verdict = json.loads((out / "verdict.json").read_text(encoding="utf-8"))
    assert validation_errors(verdict, "verdict") == []
    assert (first, second) == (0, 0)
    # On a CPU the budgets cannot be checked: verified with warnings, never plainly verified.
    assert verdict["measurements"]["verify_status"] == pipeline.VERIFIED_WITH_WARNINGS
    assert statuses(verdict, "reproduce.run") == [PASS, PASS]
    assert statuses(verdict, "eval.rescore") == [PASS, PASS]
    assert statuses(verdict, "eval.accounting") == [PASS, PASS]
    assert statuses(verdict, "judge.trusted_score") == [PASS, PASS]
    assert statuses(verdict, "judge.own_score") == [PASS, PASS]  # same data, same settings as the claim
    assert statuses(verdict, "judge.claim") == [PASS]
    assert statuses(verdict, "judge.size") == [PASS, PASS]
    assert set(statuses(verdict, "judge.train_time")) == {SKIP}  # CPU: no projection, never "checked"
    assert statuses(verdict, "reproduce.setup") == [WARN]
    (limits,) = [f for f in verdict["findings"] if f["check"] == "reproduce.limits"]  # what held depends on the OS
    assert limits["status"] in (PASS, WARN) and "network" in {**limits["evidence"][0]["values"]["enforced"],
                                                               **limits["evidence"][0]["values"]["not_enforced"]}
    seeds = {row["seed"]: row for row in verdict["measurements"]["per_seed"]}
    claimed = json.loads((TINY_RECORD / "submission.json").read_text())["seed_results"]
    for seed in (1337, 42):
        assert abs(seeds[seed]["own_val_bpb"] - claimed[str(seed)]["val_bpb"]) < 1e-3
        assert abs(seeds[seed]["trusted_val_bpb"] - seeds[seed]["own_val_bpb"]) < 2e-3
    assert (out / "verdict.md").read_text().startswith("### pgolf-harness verify")
    assert (out / "comment.md").is_file()


def test_verify_runs_the_legality_probe(tiny_verified):
    first = json.loads((tiny_verified[2] / "first_verdict.json").read_text(encoding="utf-8"))
    assert statuses(first, "probe.loss") == [PASS] and statuses(first, "probe.self_check") == [PASS]
    assert first["measurements"]["probe"]["probe_verdict"] == "pass"
    assert "timings_s" in first["measurements"] and "probe" in first["measurements"]["timings_s"]


def test_a_finished_seed_is_reused_not_rerun(tiny_verified):
    _, _, out, stamp = tiny_verified
    assert (out / "runs" / "seed_1337.json").stat().st_mtime_ns == stamp
    assert (out / "eval" / "seed_1337.json").is_file() and (out / "eval" / "seed_42.json").is_file()


def test_static_only_runs_nothing(tmp_path, capsys):
    code = main(["verify", str(TINY_RECORD), "--static-only", "--out", str(tmp_path / "out"), "--json"])
    verdict = json.loads(capsys.readouterr().out)
    assert code == 1  # incomplete: nothing was reproduced
    assert verdict["measurements"]["verify_status"] == pipeline.INCOMPLETE
    assert "--static-only" in verdict["measurements"]["incomplete_because"]
    assert not (tmp_path / "out").exists()


def test_the_attention_shim_lets_a_flash_attention_script_run(tmp_path, capsys, monkeypatch):
    """A baseline-family script calling flash_attn_func: with --attention-shim its artifact is re-evaluated;
    without it the import fails in the sandbox: a warning and a skip with the reason, not a traceback."""
    folder = tmp_path / "fa3_record"
    shutil.copytree(CASES / "baseline_family", folder)
    script = folder / rules.COUNTED_CODE_FILE
    source = script.read_text()
    sdpa = "y = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), is_causal=True)"
    assert sdpa in source
    source = source.replace(sdpa, "y = flash_attn_func(q, k, v, causal=True).transpose(1, 2)")
    script.write_text("from flash_attn_interface import flash_attn_func\n" + source)
    (folder / "submission.json").write_text(json.dumps({"name": "fa3", "github_id": "x", "val_bpb": 9.0}))
    (folder / "README.md").write_text("# fa3\n")
    monkeypatch.setenv("VOCAB_SIZE", "1024")  # the example tokenizer's, which verify gives the script too
    artifact = _baseline_artifact(CASES / "baseline_family", tmp_path)
    common = ["verify", str(folder), "--skip-train", "--artifact", str(artifact), "--json", "--device", "cpu"]
    code = main([*common, "--attention-shim", "--out", str(tmp_path / "with")])
    with_shim = json.loads(capsys.readouterr().out)
    assert statuses(with_shim, "smoke.import") == [PASS]
    assert statuses(with_shim, "eval.rescore") == [PASS], with_shim["findings"]
    assert "SDPA shim" in next(f["message"] for f in with_shim["findings"] if f["check"] == "reproduce.setup")
    code = main([*common, "--out", str(tmp_path / "without")])
    without = json.loads(capsys.readouterr().out)
    assert code == 1  # the folder has no train log either: files.required fails in both calls
    assert statuses(without, "smoke.import") == [WARN]
    assert statuses(without, "eval.rescore") == [SKIP]


def _baseline_artifact(case: Path, tmp_path: Path) -> Path:
    import importlib.util

    spec = importlib.util.spec_from_file_location("baseline_case", case / rules.COUNTED_CODE_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    path = tmp_path / "final_model.int8.ptz"
    path.write_bytes(module.artifact_bytes(module.build_model(module.Hyperparameters())))
    return path


# ---- bad input: one line, exit 2 ------------------------------------------------------------------

@pytest.mark.parametrize("argv, words", [
    (["verify", "/no/such/folder"], "no such submission folder"),
    (["verify", str(TINY_RECORD), "--nproc", "2"], "needs 2 CUDA devices"),
    (["verify", str(TINY_RECORD), "--skip-train"], "go together"),
    (["verify", str(TINY_RECORD), "--seeds", "1,x"], "--seeds"),
    (["verify", str(TINY_RECORD), "--env", "BAD"], "KEY=VALUE"),
    (["verify", str(TINY_RECORD), "--out", str(TINY_RECORD / "runs")], "inside the submission folder"),
])
def test_bad_input_is_one_line(argv, words, capsys):
    if "--nproc" in argv:
        torch = pytest.importorskip("torch")
        if torch.cuda.is_available() and torch.cuda.device_count() >= 2:
            pytest.skip("this machine has two CUDA devices")
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert words in err and "Traceback" not in err and len(err.splitlines()) == 1, err


def test_a_dataset_without_a_validation_split_is_one_line(tmp_path, capsys):
    (tmp_path / "fineweb_train_000000.bin").write_bytes(b"")
    assert main(["verify", str(TINY_RECORD), "--data", str(tmp_path), "--out", str(tmp_path / "out")]) == 2
    assert "holds no fineweb_val_*.bin shards" in capsys.readouterr().err


def test_an_unreadable_submission_json_is_a_finding_not_a_crash(tmp_path, capsys):
    folder = tmp_path / "broken"
    shutil.copytree(TINY_RECORD, folder)
    (folder / "submission.json").write_text("{not json")
    assert main(["verify", str(folder), "--static-only", "--json"]) == 1
    verdict = json.loads(capsys.readouterr().out)
    assert FAIL in statuses(verdict, "metadata.parse")
    assert verdict["measurements"]["verify_status"] == pipeline.NOT_VERIFIED


# ---- judgements on fabricated runs --------------------------------------------------------------

def run_of(seed=1, **numbers) -> SeedRun:
    base = dict(status="ok", log=f"seed_{seed}.log", artifact=f"seed_{seed}/final_model.ptz", artifact_bytes=15_000_000,
                code_bytes=50_000, own_val_bpb=1.20, own_val_loss=2.03, own_mode="final_int8_zlib_roundtrip",
                train_time_s=590.0, eval_time_s=100.0, wall_s=760.0, trusted_val_bpb=1.2002, trusted_tokens=62_021_631,
                seq_len=1024)
    return SeedRun(seed=seed, **(base | numbers))


def test_size_over_the_cap_after_the_rebuild_fails():
    (size, claim) = size_findings([run_of(artifact_bytes=15_990_000, logged_total_bytes=15_990_000 + 50_000)],
                                  15_999_000, "submission.json")
    assert size.status == FAIL and "40,000 over" in size.message
    assert claim.status == FAIL and "15,999,000" in claim.message
    (size, claim) = size_findings([run_of(logged_total_bytes=15_050_000)], 15_050_000, "submission.json")
    assert (size.status, claim.status) == (PASS, PASS)
    (_, claim) = size_findings([run_of(logged_total_bytes=14_000_000)], None, "submission.json")
    assert claim.status == WARN and "states 14,000,000" in claim.message


def test_a_claim_the_seeds_do_not_reproduce_fails():
    assert claim_finding(1.1000, [1.0995, 1.1000, 1.1005], [1.1102, 1.1098, 1.1100], None).status == FAIL
    assert claim_finding(1.1000, [1.0995, 1.1000, 1.1005], [1.1003, 1.0998, 1.1001], None).status == PASS
    # The tolerance comes from the spread: noisy seeds widen it, a fixed 5e-4 would have failed this.
    noisy = claim_finding(1.1000, [1.095, 1.100, 1.105], [1.103, 1.099, 1.106], None)
    assert noisy.status == PASS and noisy.evidence[0].values["tolerance"] > 5e-4
    assert claim_finding(1.1000, [], [1.2], "shortened: 10 steps").status == SKIP


def test_a_script_printing_a_better_score_than_its_model_is_caught():
    (found,) = trusted_findings([run_of(own_val_bpb=1.150, trusted_val_bpb=1.200)])
    assert found.status == FAIL and "better than its model's trusted number" in found.message
    (found,) = trusted_findings([run_of(own_val_bpb=1.2000, trusted_val_bpb=1.2003)])
    assert found.status == PASS
    # The split's tail, on a small split: within one window's share it is a named reason, not a failure.
    (found,) = trusted_findings([run_of(own_val_bpb=1.197, trusted_val_bpb=1.200, trusted_tokens=140_000)])
    assert found.status == PASS and "tail allowance" in found.message


def test_evaluation_time_adaptation_is_judged_against_the_base_number():
    ttt = run_of(own_val_bpb=1.17, own_mode="legal_ttt", adaptive=True, base_val_bpb=1.2001,
                 base_mode="final_int6_sliding_window", trusted_val_bpb=1.2000)
    (found,) = trusted_findings([ttt])
    assert found.status == PASS and "evaluation-time adaptation" in found.message
    ttt.base_val_bpb = 1.10  # its base number is better than its model: caught all the same
    (found,) = trusted_findings([ttt])
    assert found.status == FAIL


def test_a_crashed_seed_fails_with_its_last_lines():
    crashed = SeedRun(seed=7, status="failed", log="seed_7/console.txt", error="exited with status 1",
                      tail=["step:10/20 train_loss:5.1", "Traceback (most recent call last):", "RuntimeError: boom"])
    timed_out = SeedRun(seed=8, status="timeout", log="seed_8/console.txt", error="killed after 60 s")
    found = run_findings([crashed, timed_out])
    assert [f.status for f in found] == [FAIL, FAIL]
    assert "RuntimeError: boom" in found[0].message and "timeout" in found[1].message
    verdict = Verdict(submission="x", stage="verify", findings=found + [finding("eval.rescore", SKIP, "no artifact")])
    assert pipeline.verify_status(verdict)[0] == pipeline.NOT_VERIFIED


def test_a_verdict_whose_stages_did_not_run_is_incomplete():
    verdict = Verdict(submission="x", stage="verify", findings=[finding("files.required", PASS, "ok")])
    status, why = pipeline.verify_status(verdict)
    assert status == pipeline.INCOMPLETE and "reproduce.run" in why


def test_budgets_on_the_reference_hardware_and_by_projection():
    reference = Hardware("8x NVIDIA H100 80GB HBM3", 8, reference=True)
    over = run_of(train_time_s=640.0)
    train, evaluation, post = budget_findings([over], reference, None)
    assert (train.status, evaluation.status) == (FAIL, PASS)
    h200 = pipeline.hardware_of("1x NVIDIA H200", 1)
    assert h200.time_factor == pytest.approx(1.09 / 8)
    train, _, _ = budget_findings([run_of(train_time_s=600.0)], h200, "MAX_WALLCLOCK_SECONDS=600")
    assert train.status == SKIP and "projection only" in train.message and "training length set" in train.message
    slow = pipeline.hardware_of("1x NVIDIA H200", 1)
    train, _, _ = budget_findings([run_of(train_time_s=6000.0)], slow, None)
    assert train.status == WARN  # 6000 s x 1.09 / 8 = 817 s projected: over, by projection only
    # The training loop within the budget, the process past it because of the work after the loop.
    _, _, post = budget_findings([run_of(train_time_s=590.0, eval_time_s=50.0, wall_s=900.0)], reference, None)
    assert post.status == WARN and "work outside it" in post.message
    cpu = pipeline.hardware_of("CPU AMD EPYC (2 cores)", 1)
    assert [f.status for f in budget_findings([run_of()], cpu, None)] == [SKIP, SKIP, SKIP]


def test_per_seed_claims_are_compared_with_the_same_seed():
    found = own_score_findings([run_of(seed=1, own_val_bpb=1.2001), run_of(seed=2, own_val_bpb=1.25)],
                               {1: 1.2000, 2: 1.2000}, None)
    assert [f.status for f in found] == [PASS, WARN]
    assert [f.status for f in own_score_findings([run_of()], {1: 1.2}, "other data")] == [SKIP]


def test_the_sandbox_limits_are_reported():
    from harness.judge.runs import limits_finding

    held = limits_finding({"memory": "1 GiB (RLIMIT_AS)", "network": "a fresh network namespace"}, {})
    assert held.status == PASS and "memory, network" in held.message
    gpu = limits_finding({"network": "a fresh network namespace"},
                         {"memory": "not enforced: a CUDA run, which RLIMIT_AS would break"})
    assert gpu.status == WARN and "memory (not enforced: a CUDA run" in gpu.message
