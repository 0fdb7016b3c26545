"""Property tests: the log parser and the claims checker never raise, whatever the input.

Logs are random text and bytes, and lines assembled from the formats real logs use with random numbers
and garbage spliced in; metadata is any JSON value under the keys submission.json uses."""

from __future__ import annotations

import json
import math
import pytest
from pathlib import Path

from hypothesis import HealthCheck, given, settings, strategies as st

from harness import rules
from harness.check.claims import check_claims, claim_measurements
from harness.findings import STATUSES, Verdict
from harness.submission.logs import SEPARATOR, RunLog, parse_log
from harness.report import verdict_json
from harness.submission.scores import sample_of
from harness.judge.significance import significance_findings
from harness.submission.folder import CODE, Submission, SubmissionFile

TEMPLATES = [
    "step:{i}/{i} train_loss:{f} train_time:{f}ms step_avg:{f}ms",
    "step:{i}/{i} val_loss:{f} val_bpb:{f} train_time:{f}ms step_avg:{f}ms",
    "{i}/{i} train_loss: {f} train_time: {f}m tok/s: {i}",
    "{i}/{i} val_loss: {f} val_bpb: {f}",
    "stopping_early: wallclock_cap train_time:{f}ms step:{i}/{i}",
    "final_int8_zlib_roundtrip val_loss:{f} val_bpb:{f} eval_time:{f}ms",
    "final_int8_zlib_roundtrip_exact val_loss:{f} val_bpb:{f}",
    "final_int6_sliding_window val_loss:{f} val_bpb:{f} stride:{i} eval_time:{f}ms",
    "quantized_ttt_phased val_loss:{f} val_bpb:{f} eval_time:{f}ms",
    "diagnostic quantized val_loss:{f} val_bpb:{f} eval_time:{f}ms",
    "ttt_sliding:done val_loss={f} val_bpb={f} elapsed={f}s",
    "final_sliding val_loss:{f} val_bpb:{f} (stride={i}, T={f}) eval_time:{f}ms",
    "Serialized model int8+zlib: {i} bytes",
    "Serialized model: {i} bytes",
    "Code size: {i} bytes",
    "Code size (compressed): {i} bytes",
    "Total submission size int8+zlib: {i} bytes",
    "Total submission size: {i} bytes",
    "budget:{i}/{i} (16.00/16.00MB) FITS",
    "artifact:15.9MB ternary:{i}({i}B) code:{i}",
    "world_size:{i} grad_accum_steps:{i}",
    "  world_size: {i}",
    "seed:{i}",
    "  seed: {i}",
    "params:{i} L:10 ws:{i} ga:1 s:{i}",
    "val_loader:shards pattern=./data/datasets/fineweb10B_sp1024/fineweb_val_*.bin tokens:{i}",
    "val_tokens: {i}",
    "val_bpb:enabled tokenizer_kind=sentencepiece tokenizer_path=./data/tokenizers/fineweb_1024_bpe.model",
    "|   {i}  NVIDIA H100 80GB HBM3          On  |   00000000:0A:00.0 Off |",
    "Hyperparameters:",
    "Source code:",
    SEPARATOR,
    "import os",
    "def main():",
    "1776142360.285 {s}",
    "[rank{i}]: {s}",
    "\x1b[31m{s}\x1b[0m",
    "{s}",
]
NUMBERS = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-10**12, 10**12),
                    st.sampled_from(["", "-", "nan", "1e309", "0x1F", "..", "1.2.3"]))


@st.composite
def log_lines(draw) -> str:
    lines = []
    for template in draw(st.lists(st.sampled_from(TEMPLATES), max_size=40)):
        line = template
        while "{f}" in line or "{i}" in line or "{s}" in line:
            line = line.replace("{f}", str(draw(NUMBERS)), 1).replace("{i}", str(draw(NUMBERS)), 1)
            line = line.replace("{s}", draw(st.text(max_size=30)), 1)
        lines.append(line)
    separator = draw(st.sampled_from(["\n", "\r\n", "\r", "\n\n"]))
    return separator.join(lines)


FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(st.one_of(st.text(), st.binary(), log_lines()))
def test_parse_log_never_raises(data) -> None:
    run = parse_log(data)
    assert isinstance(run, RunLog)
    assert not any("parser stopped" in p for p in run.problems), run.problems
    score = run.score()
    assert score is None or score in run.metrics
    assert run.train_time_ms is None or isinstance(run.train_time_ms, float)


@FUZZ
@given(log_lines(), st.binary(max_size=200))
def test_parse_log_survives_binary_spliced_into_a_log(text: str, garbage: bytes) -> None:
    data = text.encode("utf-8", "surrogatepass")
    middle = len(data) // 2
    run = parse_log(data[:middle] + garbage + data[middle:])
    assert not any("parser stopped" in p for p in run.problems)


JSON = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(-10**18, 10**18),
                              st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=10)),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
                    max_leaves=12)
KEYS = ["val_bpb", "val_loss", "bytes_total", "bytes_code", "bytes_model_int8_zlib", "bytes_model_compressed",
        "seeds", "seed", "seed_results", "seed_scores", "hardware", "gpu", "track", "tokenizer"]
SEED_RESULTS = st.dictionaries(st.one_of(st.integers(0, 3000).map(str), st.text(max_size=4)),
                               st.dictionaries(st.sampled_from(["val_bpb", "val_loss", "artifact_bytes"]), JSON,
                                               max_size=3) | JSON, max_size=4)
METADATA = st.one_of(st.none(), st.dictionaries(st.sampled_from(KEYS), JSON | SEED_RESULTS, max_size=8))

@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """A record-track folder with a script (module-scoped: Hypothesis reruns the test body many times)."""
    path = tmp_path_factory.mktemp("fuzz-claims") / "records" / rules.RECORD_TRACK / "fuzz"
    path.mkdir(parents=True)
    (path / rules.COUNTED_CODE_FILE).write_text("import os\n\ndef main():\n    pass\n")
    return path


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(METADATA, st.dictionaries(st.sampled_from(["train.log", "train_seed42.log", "logs/train_seed7.txt", "a.txt"]),
                                 log_lines(), max_size=4))
def test_check_claims_never_raises(folder, metadata, texts) -> None:
    submission = Submission(path=folder, metadata=metadata, metadata_file="submission.json",
                            files=[SubmissionFile(rules.COUNTED_CODE_FILE, CODE,
                                                  (folder / rules.COUNTED_CODE_FILE).stat().st_size)])
    run_logs = {name: parse_log(text, name=name) for name, text in texts.items()}
    verdict = Verdict(submission=str(folder), stage="check")
    verdict.extend(check_claims(submission, run_logs))
    verdict.measurements.update(claim_measurements(submission, run_logs))
    assert all(f.status in STATUSES and f.message for f in verdict.findings)
    json.dumps(verdict_json(verdict), default=str, allow_nan=True)  # schema-valid and serialisable
    findings, numbers = significance_findings(sample_of("new", metadata, run_logs), sample_of("ref", metadata, run_logs))
    assert [f.check for f in findings] == ["stats.significance"]
    if numbers["significance"] is not None:
        assert 0.0 <= numbers["significance"]["p_value"] <= 1.0 or math.isnan(numbers["significance"]["p_value"])
