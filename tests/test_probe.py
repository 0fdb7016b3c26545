"""The legality probe: D's entropy rate and code lengths against a dense naive twin, the bound's
false-alarm rate by simulation, what shortens a script, the verdict rules, bad input, and the eight
cheat fixtures of tests/fixtures/probe/ classified end to end on the CPU, with the static scanner's
verdict printed beside the probe's (the test asserts only the probe's classification)."""

from __future__ import annotations

import contextlib
import io
import json
import math
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from harness import pipeline
from harness.cli import main
from harness.compliance import scan_path
from harness.data.location import example_dataset
from harness.data.shards import load_tokens, write_shard
from harness.errors import UserError
from harness.findings import FAIL, PASS, SKIP
from harness.probe.bound import EntropyBound
from harness.probe.judge import FLAGGED, PASSED, SKIPPED, ProbeRun, SelfCheck, judge_probe
from harness.probe.shortening import PROBE_TRAINING, plan_shortening
from harness.probe.split import MANIFEST_NAME, ProbeSplit, build_probe_split
from harness.probe.streams import MARKOV, MARKOV_SMOOTHING, UNIFORM, UNIGRAM, Chain, fit_chain
from harness.submission.logs import EvalMetric

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "probe"
CASES = {  # fixture folder -> what the probe must say
    "legal_sliding_window": PASSED,
    "legal_score_first_ttt": PASSED,
    "legal_ngram_cache": PASSED,
    "illegal_target_in_key": FLAGGED,
    "illegal_ttt_before_score": FLAGGED,
    "illegal_noncausal_attention": FLAGGED,
    "illegal_unnormalised_mixture": FLAGGED,
    "illegal_val_training": FLAGGED,
}
PROBE_TOKENS = 8_193
# Forty steps: the tiny model has learnt the unigram, not yet the language. One thread: CI's two cores are shared.
PROBE_ENV = {"ITERATIONS": "40", "OMP_NUM_THREADS": "1"}
BOS = 1


# ---- D: streams against a dense twin ----------------------------------------------------------------

def synthetic_dataset(directory: Path, tokens: int = 60_000, vocab: int = 7, seed: int = 3) -> tuple[Path, np.ndarray]:
    """A training shard from a random 7-token Markov chain whose row for BOS never returns to BOS."""
    rng = np.random.default_rng(seed)
    matrix = rng.dirichlet(np.full(vocab, 0.7), size=vocab)
    matrix[BOS, BOS] = 0
    matrix[BOS] /= matrix[BOS].sum()
    stream = [BOS]
    for _ in range(tokens - 1):
        stream.append(int(rng.choice(vocab, p=matrix[stream[-1]])))
    directory.mkdir(parents=True, exist_ok=True)
    write_shard(directory / "fineweb_train_000000.bin", stream)
    return directory, np.asarray(stream)


def dense_markov(train: np.ndarray, vocab: int) -> np.ndarray:
    """The Markov stream's transition matrix, counted here with a plain loop."""
    counts = np.zeros((vocab, vocab))
    for previous, following in zip(train[:-1], train[1:]):
        counts[previous, following] += 1
    unigram = np.bincount(train, minlength=vocab) / len(train)
    context = counts.sum(axis=1, keepdims=True)
    weight = context / (context + MARKOV_SMOOTHING)
    empirical = np.divide(counts, context, out=np.zeros_like(counts), where=context > 0)
    return weight * empirical + (1 - weight) * unigram


def dense_entropy_rate(matrix: np.ndarray) -> float:
    """sum_a pi(a) H(row a), pi from the linear system pi (P - I) = 0, sum pi = 1."""
    size = len(matrix)
    system = np.vstack([(matrix - np.eye(size)).T, np.ones(size)])
    pi = np.linalg.lstsq(system, np.concatenate([np.zeros(size), [1.0]]), rcond=None)[0]
    rows = -np.sum(np.where(matrix > 0, matrix * np.log(np.where(matrix > 0, matrix, 1)), 0), axis=1)
    return float(pi @ rows)


def test_the_markov_stream_agrees_with_its_dense_twin(tmp_path):
    dataset, train = synthetic_dataset(tmp_path / "data")
    chain = fit_chain(MARKOV, dataset, 7, BOS)
    matrix = dense_markov(train, 7)
    assert chain.entropy_rate() == pytest.approx(dense_entropy_rate(matrix), abs=1e-10)
    stream = chain.sample(200_000, seed=11)
    assert stream[0] == BOS and stream.dtype == np.uint16
    assert np.allclose(chain.code_lengths(stream), -np.log(matrix[stream[:-1], stream[1:]]), rtol=1e-12)
    # The sampler walks the chain it describes: transition frequencies within a few standard errors.
    counts = np.zeros((7, 7))
    np.add.at(counts, (stream[:-1], stream[1:]), 1)
    frequencies = counts / counts.sum(axis=1, keepdims=True)
    errors = np.sqrt(matrix * (1 - matrix) / counts.sum(axis=1, keepdims=True))
    assert np.all(np.abs(frequencies - matrix) <= 5 * errors + 1e-9)
    assert abs(chain.code_lengths(stream).mean() - chain.entropy_rate()) < 0.01  # about 5 standard errors


def test_the_iid_streams(tmp_path):
    dataset, train = synthetic_dataset(tmp_path / "data")
    unigram = fit_chain(UNIGRAM, dataset, 7, BOS)
    frequencies = np.bincount(train, minlength=7) / len(train)
    assert np.allclose(unigram.base, frequencies)
    assert unigram.entropy_rate() == pytest.approx(-(frequencies * np.log(frequencies)).sum(), abs=1e-12)
    stream = unigram.sample(5_000, seed=4)
    assert np.array_equal(stream, unigram.sample(5_000, seed=4))
    assert not np.array_equal(stream, unigram.sample(5_000, seed=5))
    assert np.allclose(unigram.code_lengths(stream), -np.log(frequencies[stream[1:]]))
    uniform = fit_chain(UNIFORM, dataset, 7, BOS)
    assert uniform.base[BOS] == pytest.approx(frequencies[BOS])
    assert np.allclose(np.delete(uniform.base, BOS), (1 - frequencies[BOS]) / 6)


def test_a_token_outside_the_vocabulary_is_one_line(tmp_path):
    dataset, _ = synthetic_dataset(tmp_path / "data")
    with pytest.raises(UserError, match="not below the tokenizer's vocabulary of 5"):
        fit_chain(UNIGRAM, dataset, 5, BOS)


def test_the_probe_split_links_training_shards_and_records_d(tmp_path):
    dataset, _ = synthetic_dataset(tmp_path / "source" / "toy_sp7")
    split = build_probe_split(dataset, tmp_path / "out", UNIGRAM, 3_000, 9, 7, BOS)
    assert split.dataset_dir.name == "toy_sp7"  # the script sees the source's name
    train = split.dataset_dir / "fineweb_train_000000.bin"
    assert train.is_symlink() and train.resolve() == (dataset / "fineweb_train_000000.bin").resolve()
    assert np.array_equal(load_tokens(split.dataset_dir, "val"), split.stream)
    manifest = json.loads(split.manifest_path.read_text(encoding="utf-8"))
    assert split.manifest_path.parent == tmp_path / "out" and not (split.dataset_dir / MANIFEST_NAME).exists()
    assert manifest["entropy_rate_nats"] == pytest.approx(split.entropy_rate)
    assert manifest["stream_code_length_nats"] == pytest.approx(split.code_lengths.sum())
    assert manifest["distribution"]["kind"] == UNIGRAM and manifest["seed"] == 9 and manifest["tokens"] == 3_000
    with pytest.raises(UserError, match="at least"):
        build_probe_split(dataset, tmp_path / "out", UNIGRAM, 10, 9, 7, BOS)


# ---- the bound -----------------------------------------------------------------------------------------

def naive_test(code_lengths: np.ndarray, loss: float, alpha: float, first: int) -> tuple[float, float]:
    """Floor and p-value by a plain loop over the prefixes."""
    floor, excess = math.inf, math.inf
    for k in range(first, len(code_lengths) + 1):
        total = float(np.sum(code_lengths[:k]))
        floor = min(floor, (total - math.log(1 / alpha)) / k)
        excess = min(excess, total - k * loss)
    return floor, (1.0 if excess <= 0 else math.exp(-excess))


def test_the_bound_agrees_with_its_naive_twin():
    code = np.random.default_rng(0).exponential(2.0, size=301)
    bound = EntropyBound(code, alpha=1e-3)
    for loss in (code.mean() - 0.2, code.mean() - 0.01, code.mean(), code.mean() + 0.1):
        test = bound.test(loss)
        floor, p_value = naive_test(code, loss, 1e-3, 151)
        assert test.floor == pytest.approx(floor, rel=1e-12)
        assert test.p_value == pytest.approx(p_value, rel=1e-9)
        assert test.flagged == (loss < floor)
    assert bound.test(code.mean(), scored=len(code)).scored == (301, 301)


def test_printed_rounding_is_given_to_the_submission():
    code = np.full(10_000, 2.0)
    bound = EntropyBound(code)
    floor = bound.test(2.0).floor
    assert bound.test(floor - 1e-5).flagged
    assert not bound.test(floor - 1e-5, rounding=5e-5).flagged


def test_the_false_alarm_rate_is_at_most_alpha_for_legal_predictors():
    """2,000 streams of a skewed source, two legal predictors (normalised, from the prefix only): one learns
    the frequencies as it goes, one is a fixed guess close to the source, which beats the source's own
    code length on about a third of the streams. Each is flagged at most alpha of the time. A predictor
    that raises the target's probability without renormalising is flagged every time."""
    rng = np.random.default_rng(1)
    source, alpha, length = np.array([0.6, 0.25, 0.1, 0.05]), 0.05, 400
    guess = np.array([0.62, 0.24, 0.095, 0.045])
    flags = {"adaptive": 0, "guess": 0, "guess beats the source": 0, "cheat": 0}
    for _ in range(2_000):
        stream = rng.choice(4, size=length, p=source)
        code = -np.log(source[stream])
        seen = np.vstack([np.zeros(4), np.cumsum(np.eye(4)[stream], axis=0)[:-1]]) + 0.5
        adaptive = -np.log(seen[np.arange(length), stream] / seen.sum(axis=1))
        bound = EntropyBound(code, alpha=alpha)
        flags["adaptive"] += bound.test(adaptive.mean()).flagged
        flags["guess"] += bound.test(np.mean(-np.log(guess[stream]))).flagged
        flags["guess beats the source"] += np.sum(-np.log(guess[stream])) < code.sum()
        flags["cheat"] += bound.test(np.mean(-np.log(np.minimum(1.0, 1.2 * source[stream])))).flagged
    assert flags["adaptive"] <= alpha * 2_000 and flags["guess"] <= alpha * 2_000, flags
    assert flags["guess beats the source"] > 400  # without the ln(1/alpha) allowance these would be flagged
    assert flags["cheat"] == 2_000


# ---- shortening ---------------------------------------------------------------------------------------

def test_shortening_reads_named_and_computed_variables():
    named = plan_shortening({"train_gpt.py": ["ITERATIONS", "SEED"]}, ["x = 1"], {"ITERATIONS": "7"})
    assert named.reason is None and named.env == {"ITERATIONS": "7"} and list(named.reads) == ["ITERATIONS"]
    config = "class C:\n    iterations: int = 20000\n    max_wallclock_seconds: float = 600.0\n"
    computed = plan_shortening({"train_gpt.py": ["<computed>"]}, [config], {})
    assert computed.env == PROBE_TRAINING
    neither = plan_shortening({"train_gpt.py": ["SEED", "<computed>"]}, ["steps = 5"], {"ITERATIONS": "3"})
    assert neither.reason and "cannot be cut short" in neither.reason


def test_the_reference_trainer_can_be_shortened():
    report = scan_path(str(ROOT / "reference_train"))
    plan = plan_shortening(report.env_vars, [unit.text for unit in report.sources.run_units()], {})
    assert plan.reason is None and set(plan.reads) == set(PROBE_TRAINING)


# ---- the verdict ---------------------------------------------------------------------------------------

def toy_split(tmp_path: Path) -> ProbeSplit:
    base = np.array([0.0, 0.01, 0.5, 0.49])
    chain = Chain(UNIGRAM, BOS, base)
    stream = chain.sample(20_001, seed=2)
    return ProbeSplit(tmp_path, tmp_path / MANIFEST_NAME, chain, stream, 2, chain.entropy_rate(),
                      chain.code_lengths(stream))


def statuses(findings, check):
    return [f.status for f in findings if f.check == check]


def test_a_self_check_below_the_bound_flags_a_non_causal_model(tmp_path):
    split = toy_split(tmp_path)
    shortening = plan_shortening({"t": ["ITERATIONS"]}, [], {})
    honest = EvalMetric("final_int8_zlib_roundtrip", split.stream_entropy + 0.05, 1.0, line=3)
    run = ProbeRun(completed=True, log="log.txt", metrics=[honest])
    findings, numbers = judge_probe(split, shortening, run, SelfCheck("ok", val_loss=split.stream_entropy + 0.05,
                                                                     tokens=20_000))
    assert numbers["probe_verdict"] == PASSED and statuses(findings, "probe.self_check") == [PASS]
    findings, numbers = judge_probe(split, shortening, run, SelfCheck("ok", val_loss=split.stream_entropy - 0.05,
                                                                     tokens=20_000))
    assert numbers["probe_verdict"] == FLAGGED and statuses(findings, "probe.self_check") == [FAIL]
    assert numbers["probe_modes"]["final_int8_zlib_roundtrip"]["status"] == PASSED


def test_nothing_to_test_is_a_skip_never_a_pass(tmp_path):
    split = toy_split(tmp_path)
    shortening = plan_shortening({"t": ["ITERATIONS"]}, [], {})
    run = ProbeRun(completed=False, reason="exited with status 3", tail=["boom"], log="log.txt")
    findings, numbers = judge_probe(split, shortening, run, None)
    assert numbers["probe_verdict"] == SKIPPED and "exited with status 3" in numbers["probe_reason"]
    assert statuses(findings, "probe.run") == [SKIP] and statuses(findings, "probe.self_check") == [SKIP]


# ---- the command: bad input, skips -------------------------------------------------------------------

def script_folder(tmp_path: Path, source: str) -> Path:
    folder = tmp_path / "submission"
    folder.mkdir()
    (folder / "train_gpt.py").write_text(source, encoding="utf-8")
    return folder


def run_json(argv: list[str]) -> tuple[int, dict]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(argv)
    return code, json.loads(out.getvalue())


@pytest.mark.parametrize("argv, words", [
    (["probe", "/no/such/folder"], "no such submission folder"),
    (["probe", str(FIXTURES)], "holds no train_gpt.py"),
    (["probe", str(ROOT / "reference_train"), "--env", "BAD"], "KEY=VALUE"),
    (["probe", str(ROOT / "reference_train"), "--out", str(ROOT / "reference_train" / "runs")],
     "inside the submission folder"),
    (["probe", str(ROOT / "reference_train"), "--probe-seed", "-1"], "--probe-seed"),
])
def test_bad_input_is_one_line(argv, words, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert words in err and "Traceback" not in err and len(err.splitlines()) == 1, err


def test_too_short_a_stream_is_one_line(tmp_path, capsys):
    folder = script_folder(tmp_path, 'import os\nos.environ.get("ITERATIONS")\n')
    assert main(["probe", str(folder), "--tokens", "10", "--out", str(tmp_path / "out")]) == 2
    assert "a probe stream needs at least" in capsys.readouterr().err


def test_without_network_isolation_the_probe_runs_nothing_unless_allowed(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(pipeline, "network_isolation_available", lambda: False)
    folder = script_folder(tmp_path, 'import os\nos.environ.get("ITERATIONS")\n')
    assert main(["probe", str(folder), "--out", str(tmp_path / "out")]) == 2
    assert "--allow-network" in capsys.readouterr().err and not (tmp_path / "out").exists()


def test_a_script_that_cannot_be_shortened_is_skipped_without_running(tmp_path):
    folder = script_folder(tmp_path, 'import os\nsteps = int(os.environ.get("STEPS", 20000))\n')
    code, verdict = run_json(["probe", str(folder), "--out", str(tmp_path / "out"), "--json"])
    assert code == 1 and verdict["measurements"]["probe_verdict"] == SKIPPED
    assert "cannot be cut short" in verdict["measurements"]["probe_reason"]
    assert not (tmp_path / "out").exists()


def test_a_crashing_script_is_skipped_with_its_last_lines(tmp_path):
    source = 'import os, sys\nos.environ.get("ITERATIONS")\nprint("no data here")\nsys.exit(3)\n'
    folder = script_folder(tmp_path, source)
    code, verdict = run_json(["probe", str(folder), "--tokens", "2000", "--out", str(tmp_path / "out"), "--json"])
    assert code == 1 and verdict["measurements"]["probe_verdict"] == SKIPPED
    assert "exited with status 3" in verdict["measurements"]["probe_reason"]
    assert "no data here" in verdict["measurements"]["probe_reason"]


# ---- the eight cheat fixtures ----------------------------------------------------------------------------

def assemble(case: str, destination: Path) -> Path:
    """A submission folder of one case: its train_gpt.py and the shared tiny_gpt.py beside it."""
    folder = destination / case
    folder.mkdir(parents=True)
    shutil.copyfile(FIXTURES / case / "train_gpt.py", folder / "train_gpt.py")
    shutil.copyfile(FIXTURES / "tiny_gpt.py", folder / "tiny_gpt.py")
    return folder


THROUGH_THE_COMMAND = ("legal_sliding_window", "illegal_unnormalised_mixture")


def probe_case(case: str, index: int, root: Path, dataset_dir: Path) -> tuple[dict, int | None, float]:
    """(probe measurements, exit code or None, seconds) of one case: through `python -m harness probe
    --json` for the cases in THROUGH_THE_COMMAND, else through pipeline.probe."""
    folder, out = assemble(case, root / "cases"), root / "out" / case
    started = time.monotonic()
    if case in THROUGH_THE_COMMAND:
        env_args = [word for key, value in PROBE_ENV.items() for word in ("--env", f"{key}={value}")]
        done = subprocess.run([sys.executable, "-m", "harness", "probe", str(folder), "--data", str(dataset_dir),
                               "--tokens", str(PROBE_TOKENS), "--probe-seed", str(index), "--out", str(out),
                               "--device", "cpu", "--json", *env_args], capture_output=True, text=True, cwd=ROOT)
        assert done.stdout.strip(), done.stderr
        return json.loads(done.stdout)["measurements"], done.returncode, time.monotonic() - started
    verdict = pipeline.probe(folder, str(dataset_dir), UNIGRAM, PROBE_TOKENS, PROBE_ENV, out, seed=index, device="cpu")
    return verdict.measurements, None, time.monotonic() - started


@pytest.fixture(scope="module")
def probed(tmp_path_factory):
    """Every case probed once on the example dataset, two at a time (each run is a sandboxed child
    process; a CI machine has two cores). case -> (measurements, exit code or None, seconds)."""
    dataset_dir = example_dataset().dataset_dir
    root = tmp_path_factory.mktemp("probe")
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {case: pool.submit(probe_case, case, index, root, dataset_dir) for index, case in enumerate(CASES)}
        return {case: future.result() for case, future in futures.items()}


@pytest.mark.parametrize("case", CASES)
def test_the_probe_classifies_each_fixture(case, probed):
    measurements, code, _ = probed[case]
    assert measurements["probe_verdict"] == CASES[case], measurements.get("probe_reason")
    modes = measurements["probe_modes"]
    assert "final_int8_zlib_roundtrip" in modes and len(modes) >= 2  # the baseline's line, and the case's own
    # The exported models are causal; the one trained on the validation stream is below the bound even
    # in the trusted evaluator's hands.
    assert measurements["probe_self_check"]["status"] == (FLAGGED if case == "illegal_val_training" else PASSED)
    if code is not None:
        assert code == (0 if CASES[case] == PASSED else 1)


def test_the_table_of_fixtures(probed, capsys):
    """The probe's verdict and the case's own evaluation beside the static scanner's verdict (printed, for
    the report: which catches what)."""
    lines = [f"{'fixture':29} {'probe':5} {'own evaluation':25} {'val_loss':>8} {'floor':>7} "
             f"{'margin':>8} {'self-check':10} {'static scan':13} {'s':>5}"]
    for case, (measurements, _, seconds) in probed.items():
        mode, numbers = list(measurements["probe_modes"].items())[-1]
        self_check = measurements["probe_self_check"]["status"]
        lines.append(f"{case:29} {measurements['probe_verdict']:5} {mode:25} {numbers['val_loss']:8.4f} "
                     f"{numbers['floor']:7.4f} {numbers['margin']:+8.4f} {self_check:10} "
                     f"{measurements['compliance_verdict']:13} {seconds:5.1f}")
        assert measurements["compliance_verdict"]  # the scanner ran on every fixture
    with capsys.disabled():
        print("\n" + "\n".join(lines))
