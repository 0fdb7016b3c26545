"""Which number is a submission's score: what submission.json claims, which log lines back it, the mean.

A claim is matched against the logs within a tolerance (`claim_tolerance`), trying in this order:
1. the mean over the seeds: one log per distinct seed (restricted to the claimed seeds when listed),
   every choice when a seed has several logs (a rerun beside the original), all of one eval mode;
2. the mean over every log of one eval mode (runs that logged the same seed still count once each);
3. a single log's value in any eval mode;
4. only when none of these matches: the mean over the logs of one mode and one configuration (the same
   model size, sequence length, batch and code bytes as far as the logs state them), one log per seed,
   when the folder holds runs of other configurations too: a claim that averages the two long-context
   runs of a study beside its other runs.
Means over more runs are tried first; modes are tried latest-printed first, diagnostic ones last. The
first match says which mode is "the score" and which runs make it. When nothing matches, the score is
each log's own score (`RunLog.score()`: its last non-diagnostic final metric) in the mode most logs end
with, and the rule says so.

Claims are read under every key accepted records use for them (`SCORE_ALIASES`, `TOTAL_ALIASES`, ...);
the other numbers a submission.json states beside its score (a pre-quantisation value, another mode's
mean) are `SecondaryClaim`s, each checked against anything the logs state.
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
# The keys accepted records state each claim under (records/ and fixtures/records/, 2026-03 to 2026-05),
# the canonical one first; a later alias with another value is checked as a secondary claim.
SCORE_ALIASES = {"val_bpb": ("val_bpb", "mean_val_bpb", "mean_bpb"),
                 "val_loss": ("val_loss", "mean_val_loss", "val_loss_nats", "mean_val_loss_nats")}
TOTAL_ALIASES = ("bytes_total", "artifact_bytes", "artifact_size_bytes", "artifact_bytes_max")
CODE_ALIASES = ("bytes_code", "code_bytes")
SEED_ALIASES = {"val_bpb": ("val_bpb", "val_var_bpb"), "val_loss": ("val_loss",),
                "artifact_bytes": ("artifact_bytes", "bytes_total")}
# Numbers stated beside the score: key -> the metric it is a value of.
SECONDARY_SCORE_KEYS = {
    "sliding_val_bpb": "val_bpb", "val_bpb_roundtrip": "val_bpb", "int6_zstd_val_bpb": "val_bpb",
    "post_quant_standard_val_bpb": "val_bpb", "pre_quant_val_bpb": "val_bpb", "quant_roundtrip_mean_bpb": "val_bpb",
    "post_ema_mean_bpb": "val_bpb", "pre_ttt_sliding_mean": "val_bpb", "sliding_bpb_mean": "val_bpb",
    "best_10min_byte260_val_bpb": "val_bpb", "best_10min_sp1024_val_bpb": "val_bpb",
    "val_loss_roundtrip": "val_loss", "val_loss_sliding": "val_loss", "int6_zstd_val_loss": "val_loss",
    "post_quant_standard_val_loss": "val_loss", "pre_quant_val_loss": "val_loss",
}
SECONDARY_SEED_KEYS = {"pre_ttt_val_bpb": "val_bpb", "pre_ttt_sliding_bpb": "val_bpb"}
# Sizes stated beside the total: key -> "mean" (of the runs' totals) or "single" (one run's total).
SECONDARY_TOTAL_KEYS = {"artifact_bytes_mean": "mean", "best_10min_byte260_bytes_total": "single",
                        "best_10min_sp1024_bytes_total": "single"}


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
        of = "a subset of the logs, one configuration: " if self.kind == "subset" else ""
        return f"the mean of {self.mode} over {len(self.runs)} runs ({of}{_names(self.runs)}) = {self.value:.8g}"


@dataclass
class SecondaryClaim:
    """A number submission.json states beside its score (`SECONDARY_*_KEYS`, or an alias whose value
    differs from the canonical key's): checked against every value the logs state."""

    key: str
    metric: str  # "val_bpb", "val_loss" or "bytes_total"
    value: float
    seed: int | None = None  # a per-seed value
    kind: str = "single"  # for sizes: "mean" or "single"


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
    keys: dict[str, str] = field(default_factory=dict)  # claim -> the key submission.json states it under
    secondary: list[SecondaryClaim] = field(default_factory=list)

    def key(self, claim: str) -> str:
        return self.keys.get(claim, claim)


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
    for claim, aliases in SCORE_ALIASES.items():
        setattr(claims, claim, _aliased(metadata, claim, aliases, claims, claim, positive=True))
    total = _aliased(metadata, "bytes_total", TOTAL_ALIASES, claims, "bytes_total", integer=True)
    code = _aliased(metadata, "bytes_code", CODE_ALIASES, claims, "bytes_code", integer=True)
    claims.bytes_total = int(total) if total is not None else None
    claims.bytes_code = int(code) if code is not None else None
    for key in MODEL_BYTES_KEYS:
        value = _number(metadata, key, claims.problems, integer=True)
        if value is not None:
            claims.bytes_model = (key, int(value))
            break
    for key, metric in SECONDARY_SCORE_KEYS.items():
        value = _number(metadata, key, claims.problems, positive=True)
        if value is not None:
            claims.secondary.append(SecondaryClaim(key, metric, value))
    for key, kind in SECONDARY_TOTAL_KEYS.items():
        value = _number(metadata, key, claims.problems, integer=True)
        if value is not None:
            claims.secondary.append(SecondaryClaim(key, "bytes_total", value, kind=kind))
    hardware = next((metadata[k] for k in ("hardware", "gpu", "platform") if isinstance(metadata.get(k), str)), None)
    claims.hardware = hardware
    claims.per_seed = _per_seed(metadata, claims.problems, claims.secondary)
    claims.seeds = _seeds(metadata, claims.per_seed)
    return claims


def _aliased(metadata: Mapping[str, Any], claim: str, aliases: tuple[str, ...], claims: ClaimedValues,
             metric: str, **checks: bool) -> float | None:
    """The claim under its first alias present; later aliases stating another value are secondary."""
    found = None
    for key in aliases:
        value = _number(metadata, key, claims.problems, **checks)
        if value is None:
            continue
        if found is None:
            found, claims.keys[claim] = value, key
        elif value != found:
            claims.secondary.append(SecondaryClaim(key, metric, value))
    return found


def match_claim(run_logs: Mapping[str, RunLog], key: str, claimed: float, seeds: list[int] | None = None,
                single_only: bool = False, subsets: bool = True) -> Match | None:
    """The way the logs give the claimed value within tolerance (see the module docstring), or None.
    Among the ways that round to the claim as written (1.100 for 1.1003), the one over the most runs
    wins; otherwise the closest."""
    found = _best(_candidates(run_logs, key, claimed, seeds, single_only), claimed)
    if found is None and subsets and not single_only:
        found = _best(_subset_candidates(run_logs, key, claimed), claimed)
    return found


def _best(candidates, claimed: float) -> Match | None:
    best: tuple | None = None
    found: Match | None = None
    written = 0.5 * 10.0 ** -_decimals(claimed)
    for order, candidate in enumerate(candidates):
        distance = abs(candidate.value - claimed)
        rounding = max(run.metric.rounding for run in candidate.runs)
        rank = ((0, -len(candidate.runs), distance, order) if distance <= written + rounding
                else (1, distance, -len(candidate.runs), order))
        if best is None or rank < best:
            best, found = rank, candidate
    return found


def _subset_candidates(run_logs: Mapping[str, RunLog], key: str, claimed: float):
    """Means over the logs of one configuration (two runs or more, when the mode has runs of other
    configurations too): one log per seed when a seed has several. Not arbitrary subsets: with a
    handful of runs some pair's mean lands within the tolerance of any claim."""
    for mode in _modes_in_preference_order(run_logs):
        groups: dict[tuple, dict[str, RunLog]] = {}
        for name, log in sorted(run_logs.items()):
            if mode in log.finals:
                groups.setdefault(configuration(log), {})[name] = log
        if len(groups) < 2:
            continue
        for logs in groups.values():
            for runs in _seed_choices(logs, mode, None) if len(logs) > 1 else ():
                for match in _mean_match(key, claimed, mode, runs):
                    yield Match(match.key, match.claimed, match.value, "subset", match.mode, match.runs)


def configuration(log: RunLog) -> tuple:
    """What a log states about the run's setup besides its seed: runs that agree are of one configuration."""
    settings = log.settings
    return (log.model_params, log.world_size, log.code_bytes, log.val_token_count,
            settings.get("train_seq_len"), settings.get("train_batch_tokens"), settings.get("num_layers"),
            settings.get("model_dim"))


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
    for key, other in zip(SCORE_KEYS, reversed(SCORE_KEYS)):  # a val_bpb stated under val_loss, or the reverse
        claimed = getattr(claims, key)
        found = match_claim(run_logs, other, claimed, claims.seeds) if claimed is not None else None
        if found:
            return SubmissionScore(found.mode, found.runs, f"the mode whose {other} matches the claimed {key} (a "
                                   f"value stated under the wrong key): {found.describe()}", found)
    return _default_score(run_logs)


@dataclass
class SeedResult:
    """A per-seed claim and what the logs say about it."""

    seed: int
    claimed: float
    match: Match | None  # the line of that seed's log matching the claim
    logs: list[str]  # the logs that state that seed
    elsewhere: Match | None = None  # no log of that seed matches, but this log of another seed does


def per_seed_matches(run_logs: Mapping[str, RunLog], claims: ClaimedValues, key: str) -> list[SeedResult]:
    """For each seed with a claimed `key`: the log line matching it, or (a mislabelled seed) the line of
    another seed's log that does, when no claimed seed already owns that log."""
    results = []
    for seed, values in sorted(claims.per_seed.items()):
        if key not in values:
            continue
        logs = {name: log for name, log in run_logs.items() if log.seed == seed}
        found = match_claim(logs, key, values[key], single_only=True) if logs else None
        result = SeedResult(seed, values[key], found, sorted(logs))
        if found is None:
            others = {name: log for name, log in run_logs.items()
                      if log.seed != seed and log.seed not in claims.per_seed}
            result.elsewhere = match_claim(others, key, values[key], single_only=True) if others else None
        results.append(result)
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


def _per_seed(metadata: Mapping[str, Any], problems: list[str], secondary: list[SecondaryClaim]
              ) -> dict[int, dict[str, float]]:
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
            for key, aliases in SEED_ALIASES.items():
                for alias in aliases:
                    value = _number(entry, alias, problems, positive=key != "artifact_bytes",
                                    integer=key == "artifact_bytes")
                    if value is not None:
                        values[key] = value
                        break
            for key, metric in SECONDARY_SEED_KEYS.items():
                value = _number(entry, key, problems, positive=True)
                if value is not None:
                    secondary.append(SecondaryClaim(key, metric, value, seed=seed))
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
