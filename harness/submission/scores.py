"""Which number is a submission's score: what submission.json claims, which log lines back it, the mean.

A claim is matched against the logs within a tolerance (`claim_tolerance`), trying in this order:
1. the mean over the seeds: one log per distinct seed (restricted to the claimed seeds when listed),
   every choice when a seed has several logs (a rerun beside the original), all of one eval mode;
2. the mean over every log of one eval mode (runs that logged the same seed still count once each);
3. a single log's value in any eval mode.
Means over more runs are tried first; modes are tried latest-printed first, diagnostic ones last. The
first match says which mode is "the score" and which runs make it. When nothing matches, the score is
each log's own score (`RunLog.score()`: its last non-diagnostic final metric) in the mode most logs end
with, and the rule says so.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Mapping

from harness.submission.logs import EvalMetric, RunLog
from harness.rules import CLAIM_TOLERANCE_BPB
from harness import stats
from harness.stats import Sample

MAX_COMBINATIONS = 256  # choices of one log per seed tried when seeds have several logs
SCORE_KEYS = ("val_bpb", "val_loss")
MODEL_BYTES_KEYS = ("bytes_model", "bytes_model_compressed", "bytes_model_int8_zlib", "bytes_model_int6_zstd")


@dataclass
class RunScore:
    """One run's value in the chosen mode: the log it comes from and its seed."""

    log: str
    seed: int | None
    metric: EvalMetric

    def value(self, key: str) -> float:
        return getattr(self.metric, key)


@dataclass
class Match:
    """A claimed number matched by the logs: how (mean or single), in which mode, by which runs."""

    key: str
    claimed: float
    value: float
    kind: str  # "mean" or "single"
    mode: str
    runs: list[RunScore]

    def describe(self) -> str:
        if self.kind == "single":
            run = self.runs[0]
            return f"{run.log}:{run.metric.line} ({self.mode}) = {self.value:.8g}"
        return f"the mean of {self.mode} over {len(self.runs)} runs ({_names(self.runs)}) = {self.value:.8g}"


@dataclass
class ClaimedValues:
    """The numbers submission.json states, validated; `problems` says which values were unusable."""

    val_bpb: float | None = None
    val_loss: float | None = None
    seeds: list[int] = field(default_factory=list)
    per_seed: dict[int, dict[str, float]] = field(default_factory=dict)  # seed -> val_bpb/val_loss/artifact_bytes
    bytes_total: int | None = None
    bytes_code: int | None = None
    bytes_model: tuple[str, int] | None = None  # (key, value)
    hardware: str | None = None
    problems: list[str] = field(default_factory=list)


@dataclass
class SubmissionScore:
    """The submission's score: its mode, the runs it is the mean of, and how they were chosen."""

    mode: str | None
    runs: list[RunScore]
    rule: str
    match: Match | None = None

    def values(self, key: str) -> list[float]:
        return [run.value(key) for run in self.runs if math.isfinite(run.value(key))]

    def mean(self, key: str) -> float | None:
        values = self.values(key)
        return stats.mean(values) if values else None

    def std(self, key: str) -> float | None:
        values = self.values(key)
        return stats.stdev(values) if len(values) > 1 else None

    def logs(self) -> list[str]:
        return [run.log for run in self.runs]


def claim_tolerance(claimed: float) -> float:
    """How far a logged value may be from a claim: rules.CLAIM_TOLERANCE_BPB, or half a unit of the
    claim's last written decimal when it was written shorter (1.081 stands for 1.0805..1.0815). The
    matcher adds the log line's own rounding (`EvalMetric.rounding`: 5e-5 for 4 printed decimals)."""
    return max(CLAIM_TOLERANCE_BPB, 0.5 * 10.0 ** -_decimals(claimed))


def _decimals(value: float) -> int:
    """Decimals of a number as written in JSON (Python's shortest repr gives the same digits)."""
    text = repr(float(value))
    return len(text.split(".")[1]) if "." in text and "e" not in text else 8


def claimed_values(metadata: Mapping[str, Any] | None) -> ClaimedValues:
    """Read the claims from a parsed submission.json; never raises on wrong types or shapes."""
    claims = ClaimedValues()
    if not isinstance(metadata, Mapping):
        return claims
    claims.val_bpb = _number(metadata, "val_bpb", claims.problems, positive=True)
    claims.val_loss = _number(metadata, "val_loss", claims.problems, positive=True)
    total = _number(metadata, "bytes_total", claims.problems, integer=True)
    code = _number(metadata, "bytes_code", claims.problems, integer=True)
    claims.bytes_total = int(total) if total is not None else None
    claims.bytes_code = int(code) if code is not None else None
    for key in MODEL_BYTES_KEYS:
        value = _number(metadata, key, claims.problems, integer=True)
        if value is not None:
            claims.bytes_model = (key, int(value))
            break
    hardware = metadata.get("hardware", metadata.get("gpu"))
    claims.hardware = hardware if isinstance(hardware, str) else None
    claims.per_seed = _per_seed(metadata, claims.problems)
    claims.seeds = _seeds(metadata, claims.per_seed)
    return claims


def match_claim(run_logs: Mapping[str, RunLog], key: str, claimed: float, seeds: list[int] | None = None,
                single_only: bool = False) -> Match | None:
    """The way the logs give the claimed value within tolerance (see the module docstring), or None.
    Among the ways that round to the claim as written (1.100 for 1.1003), the one over the most runs
    wins; otherwise the closest."""
    best: tuple | None = None
    found: Match | None = None
    written = 0.5 * 10.0 ** -_decimals(claimed)
    for order, candidate in enumerate(_candidates(run_logs, key, claimed, seeds, single_only)):
        distance = abs(candidate.value - claimed)
        rounding = max(run.metric.rounding for run in candidate.runs)
        rank = ((0, -len(candidate.runs), distance, order) if distance <= written + rounding
                else (1, distance, -len(candidate.runs), order))
        if best is None or rank < best:
            best, found = rank, candidate
    return found


def _candidates(run_logs: Mapping[str, RunLog], key: str, claimed: float, seeds: list[int] | None,
                single_only: bool):
    modes = _modes_in_preference_order(run_logs)
    if not single_only:
        for mode in modes:
            for restrict in ((seeds, None) if seeds else (None,)):
                for runs in _seed_choices(run_logs, mode, restrict):
                    yield from _mean_match(key, claimed, mode, runs)
        for mode in modes:
            runs = [RunScore(name, log.seed, log.finals[mode]) for name, log in run_logs.items() if mode in log.finals]
            if len(runs) > 1:
                yield from _mean_match(key, claimed, mode, runs)
    for mode in modes:
        for name, log in run_logs.items():
            metric = log.finals.get(mode)
            if metric is not None and _close(claimed, getattr(metric, key), metric.rounding):
                yield Match(key, claimed, getattr(metric, key), "single", mode, [RunScore(name, log.seed, metric)])


def score_submission(run_logs: Mapping[str, RunLog], claims: ClaimedValues) -> SubmissionScore:
    """The submission's score and the runs behind it: the claim's match, else the logs' own scores."""
    for key in SCORE_KEYS:
        claimed = getattr(claims, key)
        if claimed is None:
            continue
        found = match_claim(run_logs, key, claimed, claims.seeds)
        if found:
            return SubmissionScore(found.mode, found.runs, f"the mode whose value matches the claimed {key}: "
                                   f"{found.describe()}", found)
    return _default_score(run_logs)


def per_seed_matches(run_logs: Mapping[str, RunLog], claims: ClaimedValues, key: str
                     ) -> list[tuple[int, float, Match | None, list[str]]]:
    """For each seed with a claimed `key`: (seed, claimed value, the log line matching it or None,
    the logs that state that seed)."""
    results = []
    for seed, values in sorted(claims.per_seed.items()):
        if key not in values:
            continue
        logs = {name: log for name, log in run_logs.items() if log.seed == seed}
        found = match_claim(logs, key, values[key], single_only=True) if logs else None
        results.append((seed, values[key], found, sorted(logs)))
    return results


def _default_score(run_logs: Mapping[str, RunLog]) -> SubmissionScore:
    own = {name: log.score() for name, log in run_logs.items() if log.score() is not None}
    if not own:
        return SubmissionScore(None, [], "no log states a final metric")
    counts = Counter(metric.mode for metric in own.values())
    mode = max(counts, key=lambda m: (counts[m], max(x.line for x in own.values() if x.mode == m)))
    runs, seen = [], set()
    for name, log in sorted(run_logs.items()):
        metric = log.finals.get(mode)
        if metric is None or (log.seed is not None and log.seed in seen):
            continue
        seen.add(log.seed)
        runs.append(RunScore(name, log.seed, metric))
    return SubmissionScore(mode, runs, f"no claim matched; the mode most logs end with ({mode}), "
                           f"one log per seed")


def _modes_in_preference_order(run_logs: Mapping[str, RunLog]) -> list[str]:
    last_line: dict[str, tuple[bool, int]] = {}
    for log in run_logs.values():
        for metric in log.metrics:
            previous = last_line.get(metric.mode, (True, 0))
            last_line[metric.mode] = (previous[0] and metric.diagnostic, max(previous[1], metric.line))
    return sorted(last_line, key=lambda m: (last_line[m][0], -last_line[m][1]))


def _seed_choices(run_logs: Mapping[str, RunLog], mode: str, seeds: list[int] | None):
    """Every way to take one log per distinct seed (of the claimed seeds, when listed), largest first."""
    groups: dict[int, list[RunScore]] = {}
    for name, log in sorted(run_logs.items()):
        if log.seed is not None and mode in log.finals:
            groups.setdefault(log.seed, []).append(RunScore(name, log.seed, log.finals[mode]))
    if seeds:
        wanted = {seed: runs for seed, runs in groups.items() if seed in seeds}
        groups = wanted or groups
    if len(groups) < 2:
        return
    for combination in itertools.islice(itertools.product(*groups.values()), MAX_COMBINATIONS):
        yield list(combination)


def _mean_match(key: str, claimed: float, mode: str, runs: list[RunScore]):
    values = [run.value(key) for run in runs]
    if values and all(math.isfinite(v) for v in values):
        mean = stats.mean(values)
        if _close(claimed, mean, max(run.metric.rounding for run in runs)):
            yield Match(key, claimed, mean, "mean", mode, runs)


def _close(claimed: float, value: float, rounding: float) -> bool:
    return math.isfinite(value) and abs(claimed - value) <= claim_tolerance(claimed) + rounding


def _number(metadata: Mapping[str, Any], key: str, problems: list[str], *, positive: bool = False,
            integer: bool = False) -> float | None:
    if key not in metadata or metadata[key] is None:
        return None
    value = metadata[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        problems.append(f"{key} is {_kind(value)}, not a number")
        return None
    if not math.isfinite(value):
        problems.append(f"{key} is {value}, not a finite number")
        return None
    if value < 0 or (positive and value == 0):
        problems.append(f"{key} is {value}; it must be {'positive' if positive else 'zero or more'}")
        return None
    if integer and value != int(value):
        problems.append(f"{key} is {value}; a byte count is a whole number")
        return None
    return float(value)


def _per_seed(metadata: Mapping[str, Any], problems: list[str]) -> dict[int, dict[str, float]]:
    """Per-seed values from `seed_results` or `seeds` as a mapping, or `seeds` + `seed_scores` lists."""
    result: dict[int, dict[str, float]] = {}
    table = metadata.get("seed_results")
    if not isinstance(table, Mapping) and isinstance(metadata.get("seeds"), Mapping):
        table = metadata["seeds"]
    if isinstance(table, Mapping):
        for raw_seed, entry in table.items():
            seed = _seed(raw_seed)
            if seed is None or not isinstance(entry, Mapping):
                problems.append(f"per-seed entry {str(raw_seed)[:40]!r} is not a seed with a table of values")
                continue
            values = {}
            for key in (*SCORE_KEYS, "artifact_bytes"):
                value = _number(entry, key, problems, positive=key != "artifact_bytes",
                                integer=key == "artifact_bytes")
                if value is not None:
                    values[key] = value
            result[seed] = values
    seeds, scores = metadata.get("seeds"), metadata.get("seed_scores")
    if not result and isinstance(seeds, list) and isinstance(scores, list):
        if len(seeds) != len(scores):
            problems.append(f"seeds lists {len(seeds)} seeds but seed_scores {len(scores)} values")
        for raw_seed, score in zip(seeds, scores):
            seed = _seed(raw_seed)
            value = _number({"seed_scores": score}, "seed_scores", problems, positive=True)
            if seed is not None and value is not None:
                result[seed] = {"val_bpb": value}
    return result


def _seeds(metadata: Mapping[str, Any], per_seed: dict[int, dict[str, float]]) -> list[int]:
    raw = metadata.get("seeds")
    if isinstance(raw, list):
        seeds = [_seed(s) for s in raw]
        return [s for s in seeds if s is not None]
    if per_seed:
        return list(per_seed)
    single = _seed(metadata.get("seed"))
    return [single] if single is not None else []


def _seed(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    return None


def _kind(value: Any) -> str:
    names = {str: "a string", list: "a list", dict: "an object", bool: "true/false"}
    return names.get(type(value), type(value).__name__)


def _names(runs: list[RunScore]) -> str:
    return ", ".join(run.log for run in runs)


def sample_of(name: str, metadata: Mapping[str, Any] | None, run_logs: Mapping[str, RunLog]) -> Sample:
    """A submission's per-run scores for the significance test: the runs behind its score when the logs
    give at least two; else the per-seed values submission.json lists; else its claimed mean alone."""
    claims = claimed_values(metadata)
    score = score_submission(run_logs, claims)
    tokenizer = _tokenizer(run_logs, score, metadata)
    if len(score.runs) >= 2 or (score.runs and len(claims.per_seed) < 2):
        return Sample(name, [r.metric.val_loss for r in score.runs], [r.metric.val_bpb for r in score.runs],
                      tokenizer, f"logs ({len(score.runs)} runs, mode {score.mode})")
    seeded = [values for _, values in sorted(claims.per_seed.items()) if "val_bpb" in values]
    if len(seeded) >= 2:
        losses = [values["val_loss"] for values in seeded if "val_loss" in values]
        return Sample(name, losses if len(losses) == len(seeded) else [], [values["val_bpb"] for values in seeded],
                      tokenizer, f"submission.json per-seed values ({len(seeded)} seeds)")
    if claims.val_bpb is not None:
        return Sample(name, [claims.val_loss] if claims.val_loss is not None else [], [claims.val_bpb], tokenizer,
                      "submission.json claimed mean")
    return Sample(name, [], [], tokenizer, "nothing: no logged or claimed score")


def _tokenizer(run_logs: Mapping[str, RunLog], score: SubmissionScore, metadata: Mapping[str, Any] | None) -> str | None:
    """The tokenizer the scored runs used (its file name, else the dataset directory), when all agree."""
    logs = [run_logs[name] for name in score.logs()] or list(run_logs.values())
    names = {log.tokenizer or log.dataset for log in logs} - {None}
    if len(names) == 1:
        return names.pop()
    declared = metadata.get("tokenizer") if isinstance(metadata, Mapping) else None
    return declared if isinstance(declared, str) and not names else None
