"""`harness eval` end to end: the reference trainer's artifact re-scored by the trusted evaluator matches
the trainer's own final sliding-window number to 1e-5; claims pass, fail or warn; bad input exits 2;
a script no adapter can load exits 1 with a skip."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from harness import rules
from harness.cli import main
from harness.data.shards import write_shard
from test_reference_train import markov_tokens  # BOS-led documents from a learnable chain

REPO = Path(__file__).resolve().parents[1]
TRAINER_DIR = REPO / "reference_train"
SEQ_LEN, STRIDE = 32, 8
TINY_RUN = dict(NUM_LAYERS="2", MODEL_DIM="64", NUM_HEADS="4", NUM_KV_HEADS="2", TRAIN_SEQ_LEN=str(SEQ_LEN),
                TRAIN_BATCH_TOKENS="512", ITERATIONS="3", WARMUP_STEPS="1", VAL_BATCH_SIZE="4096", VAL_LOSS_EVERY="0",
                TRAIN_LOG_EVERY="1", MAX_WALLCLOCK_SECONDS="0", WARMDOWN_ITERS="2", SLIDING_WINDOW_EVAL="1",
                EVAL_STRIDE=str(STRIDE), EVAL_BATCH_SEQS="8", SEED="11")
SLIDING_EXACT = re.compile(r"^final_sliding_window_exact val_loss:(\S+) val_bpb:(\S+)$", re.M)


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> dict:
    """A tiny reference-trainer run with its sliding-window evaluation: artifact, data, logged score."""
    from data_helpers import TINY_VOCAB, tiny_tokenizer

    root = tmp_path_factory.mktemp("e2e")
    tokenizer = tiny_tokenizer(root / "tiny.model")
    data = root / "data"
    data.mkdir()
    write_shard(data / "fineweb_train_000000.bin", markov_tokens(4000, TINY_VOCAB, 1))
    write_shard(data / "fineweb_val_000000.bin", markov_tokens(1100, TINY_VOCAB, 2))
    work = root / "work"
    work.mkdir()
    env = {**os.environ, **TINY_RUN, "VOCAB_SIZE": str(TINY_VOCAB), "DATA_PATH": str(data),
           "TOKENIZER_PATH": str(tokenizer)}
    run = subprocess.run([sys.executable, str(TRAINER_DIR / rules.COUNTED_CODE_FILE)], cwd=work, env=env,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    (loss, bpb), = SLIDING_EXACT.findall(run.stdout)
    return dict(artifact=work / "final_model.int8.ptz", data=data, tokenizer=tokenizer,
                val_loss=float(loss), val_bpb=float(bpb))


def eval_args(folder: Path, trained: dict, *extra: str) -> list[str]:
    return ["eval", str(folder), "--artifact", str(trained["artifact"]), "--data", str(trained["data"]),
            "--tokenizer", str(trained["tokenizer"]), "--stride", str(STRIDE), "--device", "cpu", *extra]


def run_json(capsys, args: list[str]) -> tuple[int, dict]:
    code = main(args)
    return code, json.loads(capsys.readouterr().out)


def test_eval_matches_the_trainers_own_sliding_window_score(trained, capsys):
    code, verdict = run_json(capsys, eval_args(TRAINER_DIR, trained, "--json", "--claimed", str(trained["val_bpb"]),
                                               "--tolerance", "1e-5"))
    measured = verdict["measurements"]
    assert code == 0 and verdict["outcome"] == "pass"
    assert measured["adapter"] == "hook" and (measured["seq_len"], measured["stride"]) == (SEQ_LEN, STRIDE)
    assert measured["tokens"] == 1099
    assert abs(measured["val_bpb"] - trained["val_bpb"]) < 1e-5
    assert abs(measured["val_loss"] - trained["val_loss"]) < 1e-5
    checks = {f["check"]: f["status"] for f in verdict["findings"]}
    assert checks == {"eval.rescore": "pass", "eval.accounting": "pass", "eval.claim": "pass"}


def test_claim_from_submission_json_that_is_too_good_fails(trained, tmp_path, capsys):
    folder = tmp_path / "submission"
    folder.mkdir()
    shutil.copy(TRAINER_DIR / rules.COUNTED_CODE_FILE, folder)
    (folder / "submission.json").write_text(json.dumps({"val_bpb": trained["val_bpb"] - 0.01}))
    code, verdict = run_json(capsys, eval_args(folder, trained, "--json", "--claimed", "--max-tokens", "500"))
    claim = next(f for f in verdict["findings"] if f["check"] == "eval.claim")
    assert code == 1 and verdict["outcome"] == "fail" and claim["status"] == "fail"
    assert verdict["measurements"]["tokens"] == 499
    assert claim["evidence"][0]["values"]["tolerance"] == rules.EVAL_CLAIM_TOLERANCE_BPB


def test_a_script_no_adapter_can_load_exits_1_with_a_skip(trained, tmp_path, capsys):
    folder = tmp_path / "plain"
    folder.mkdir()
    (folder / rules.COUNTED_CODE_FILE).write_text("print('hello')\n")
    code, verdict = run_json(capsys, eval_args(folder, trained, "--json"))
    assert code == 1 and verdict["outcome"] == "skip"
    assert "load_eval_model" in verdict["findings"][0]["message"]


def test_bad_input_exits_2_with_one_line(trained, tmp_path, capsys):
    no_claim = tmp_path / "no_claim"
    no_claim.mkdir()
    shutil.copy(TRAINER_DIR / rules.COUNTED_CODE_FILE, no_claim)
    cases = [
        (["eval", str(tmp_path / "missing"), "--artifact", str(trained["artifact"])], "no such submission folder"),
        (eval_args(TRAINER_DIR, trained)[:2] + ["--artifact", str(tmp_path / "none.ptz")], "no such artifact"),
        (eval_args(TRAINER_DIR, trained, "--stride", "0"), "--stride must be at least 1"),
        (eval_args(TRAINER_DIR, trained, "--seq-len", "4"), "--seq-len must be at least the stride"),
        (eval_args(TRAINER_DIR, trained, "--claimed", "abc"), "--claimed takes a val_bpb number"),
        (eval_args(no_claim, trained, "--claimed"), "no submission.json to read the claim from"),
        (eval_args(TRAINER_DIR, trained, "--data", str(tmp_path)), "holds no fineweb_val_"),
    ]
    for args, message in cases:
        assert main(args) == 2, args
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err
