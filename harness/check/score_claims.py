"""claims.val_bpb and claims.val_loss: the claimed score (and each seed's) against the logs.

A claim passes when the logs give it (`scores.match_claim`: a mean over seeds, over one mode's logs, a
single log, or, failing those, a subset of one configuration's logs). What else a claim can be:
- the best of several seeds of one configuration, while the README states their mean: a failure (the
  score is the mean, R5.1);
- a pre-quantisation value (a diagnostic pre-quantisation evaluation, or the last in-training
  validation when the log has no evaluation after quantisation): a failure that says so (R3.1 scores
  the artifact);
- a value of the other metric (a val_bpb stated as val_loss): a warning naming the wrong key;
- per seed, the value of another seed's log: a mislabelled seed, a warning naming both numbers.
Other numbers submission.json states beside the score (`scores.SecondaryClaim`) are checked against
anything the logs state; one that no log gives is a warning, since it is not the score.
"""

from __future__ import annotations

import math
import re

from harness import stats
from harness.check.context import Context, finite, listed, run_evidence
from harness.findings import FAIL, PASS, SKIP, WARN, Evidence, Finding, finding
from harness.submission.logs import RunLog, ValPoint
from harness.submission.scores import (SCORE_ALIASES, SCORE_KEYS, Match, SecondaryClaim, SeedResult, claim_tolerance,
                                       configuration, match_claim, per_seed_matches)

PRE_QUANT_MARKERS = ("pre-quant", "pre_quant", "prequant", "post_ema", "post-ema")
VAL_POINT_ROUNDING = 0.5e-4  # in-training validation lines print four decimals
_OTHER = {"val_bpb": "val_loss", "val_loss": "val_bpb"}
_DECIMAL = re.compile(r"(?<![\d.])\d+\.(\d{3,})(?![\d.])")
_MEAN_WORDS = re.compile(r"\b(?:mean|average|avg)\b", re.IGNORECASE)


def check_score_claims(c: Context) -> list[Finding]:
    findings = []
    for key in SCORE_KEYS:
        check = f"claims.{key}"
        if c.submission.metadata is None:
            reason = c.submission.metadata_error or "there is no submission.json"
            findings.append(finding(check, SKIP, f"no claims to check: {reason}."))
            continue
        problems = [p for p in c.claims.problems if p.startswith(tuple(alias + " " for alias in SCORE_ALIASES[key]))]
        claimed = getattr(c.claims, key)
        if problems:
            findings.append(finding(check, FAIL, f"submission.json: {problems[0]}.", file=c.submission.metadata_file))
        elif claimed is not None:
            findings.append(_claimed_score(c, key, claimed))
        elif not any(key in values for values in c.claims.per_seed.values()):
            findings.append(finding(check, SKIP, f"submission.json claims no {key}.", file=c.submission.metadata_file))
        per_seed = per_seed_matches(c.logs, c.claims, key)
        if per_seed:
            findings.append(_per_seed(c, key, per_seed))
        secondary = [claim for claim in c.claims.secondary if claim.metric == key]
        if secondary and c.logs:
            findings.append(_secondary(c, key, secondary))
    return findings


def _claimed_score(c: Context, key: str, claimed: float) -> Finding:
    check, label = f"claims.{key}", f"claimed {c.claims.key(key)} {claimed}"
    if not c.logs:
        return finding(check, SKIP, f"{label} cannot be checked: the folder holds no train log.")
    match = c.score.match if c.score.match is not None and c.score.match.key == key else None
    if match is None and c.score.match is not None:  # the other score claim fixed the runs: theirs first
        match = _same_runs(c, key, claimed)
    if match is None:  # and then a subset of one configuration is no explanation
        match = match_claim(c.logs, key, claimed, c.claims.seeds, subsets=c.score.match is None)
    tolerance = f"tolerance {claim_tolerance(claimed):g}"
    if match is not None and _pre_quantisation(match.mode):
        after = _after_quantisation(c.logs[match.runs[0].log])
        return Finding(check, FAIL, f"{label} is a pre-quantisation value: {match.describe()}; the score is the "
                       f"artifact's, after quantisation ({after}) (R3.1).", run_evidence(match.runs, key))
    if match is not None:
        return _best_of_seeds(c, key, claimed, match) or Finding(
            check, PASS, f"{label} matches {match.describe()} ({tolerance}).", run_evidence(match.runs, key))
    crossed = match_claim(c.logs, _OTHER[key], claimed, c.claims.seeds)
    if crossed is not None:
        return Finding(check, WARN, f"{label} is a {_OTHER[key]} value: it matches {crossed.describe()}; "
                       f"submission.json states it under the wrong key.", run_evidence(crossed.runs, _OTHER[key]))
    trained = _in_training(c.logs, key, claimed)
    if trained is not None:
        name, point = trained
        return finding(check, FAIL, f"{label} is the in-training validation at step {point.step} ({name}:{point.line}),"
                       f" measured before quantisation; {_after_quantisation(c.logs[name])}: the score is the "
                       "artifact's (R3.1).", file=name, line=point.line, step=point.step, logged=getattr(point, key))
    if not any(log.metrics for log in c.logs.values()):
        return finding(check, FAIL, f"{label}, but no log states a final metric.", logs=sorted(c.logs))
    mean = c.score.mean(key)
    shown = f"{mean:.8g}" if mean is not None else "nothing"
    return Finding(check, FAIL, f"{label} matches no log: the logs give {shown} ({c.score.rule}; {tolerance}).",
                   run_evidence(c.score.runs, key))


def _same_runs(c: Context, key: str, claimed: float) -> Match | None:
    """The claim as the mean (or value) over the runs behind the other score claim, in its mode."""
    runs = c.score.runs
    values = [getattr(run.metric, key) for run in runs]
    if not values or not all(math.isfinite(v) for v in values):
        return None
    value = stats.mean(values)
    if abs(value - claimed) > claim_tolerance(claimed) + max(run.metric.rounding for run in runs):
        return None
    return Match(key, claimed, value, c.score.match.kind, c.score.mode, runs)


def _best_of_seeds(c: Context, key: str, claimed: float, match: Match) -> Finding | None:
    """A single log's value that is the best of its configuration's seeds, while the README states
    their mean: the claim picks a seed (R5.1, R5.3)."""
    if match.kind != "single":
        return None
    log = c.logs[match.runs[0].log]
    by_seed: dict[int, tuple[str, float]] = {}
    for name, other in sorted(c.logs.items()):
        if match.mode in other.finals and other.seed is not None and configuration(other) == configuration(log):
            by_seed.setdefault(other.seed, (name, getattr(other.finals[match.mode], key)))
    values = [value for _, value in by_seed.values()]
    if len(values) < 2 or not all(math.isfinite(v) for v in values):
        return None
    slack = claim_tolerance(claimed) + match.runs[0].metric.rounding
    mean = stats.mean(values)
    if abs(claimed - min(values)) > slack or abs(claimed - mean) <= slack:
        return None
    stated = _stated_mean(c.readme_lines(), mean)
    if stated is None:
        return None
    line, text = stated
    evidence = [Evidence(file=name, line=c.logs[name].finals[match.mode].line, values={"seed": seed, key: value})
                for seed, (name, value) in sorted(by_seed.items())]
    evidence.append(Evidence(file="README.md", line=line, excerpt=text.strip()[:200], values={"mean": mean}))
    return Finding(f"claims.{key}", FAIL, f"claimed {c.claims.key(key)} {claimed} is the best of {len(values)} seeds "
                   f"({match.describe()}), while the README states their mean {mean:.8g} (README.md:{line}): the "
                   "score is the mean over the seeds (R5.1).", evidence)


def _stated_mean(lines: list[str], mean: float) -> tuple[int, str] | None:
    """The README line that says `mean` (or average) and gives this value to its written precision."""
    for number, text in enumerate(lines, start=1):
        if not _MEAN_WORDS.search(text):
            continue
        for match in _DECIMAL.finditer(text):
            written = 0.5 * 10.0 ** -len(match[1])
            if abs(float(match[0]) - mean) <= written + 1e-9:
                return number, text
    return None


def _pre_quantisation(mode: str) -> bool:
    lowered = mode.lower()
    return any(marker in lowered for marker in PRE_QUANT_MARKERS)


def _after_quantisation(log: RunLog) -> str:
    score = log.score()
    if score is None:
        return "the log states no evaluation after quantisation"
    return f"the log's own score is {score.val_bpb:.8g} val_bpb ({score.mode}, line {score.line})"


def _in_training(logs, key: str, claimed: float) -> tuple[str, ValPoint] | None:
    """A log whose last in-training validation (`step:N/T val_loss val_bpb`, the model before
    quantisation) gives the value; earlier steps are not candidates (a coincidence, not a claim)."""
    slack = claim_tolerance(claimed) + VAL_POINT_ROUNDING
    for name, log in sorted(logs.items()):
        if log.val_points:
            point = max(log.val_points, key=lambda p: p.line)
            if abs(getattr(point, key) - claimed) <= slack:
                return name, point
    return None


def _per_seed(c: Context, key: str, results: list[SeedResult]) -> Finding:
    check = f"claims.{key}"
    evidence, mismatched, mislabelled, missing = [], [], [], []
    for result in results:
        values = {"seed": result.seed, "claimed": result.claimed}
        if result.match is not None:
            run = result.match.runs[0]
            evidence.append(Evidence(file=run.log, line=run.metric.line,
                                     values={**values, key: result.match.value, "mode": result.match.mode}))
        elif result.elsewhere is not None:
            run = result.elsewhere.runs[0]
            mislabelled.append(f"seed {result.seed}'s {result.claimed} matches {run.log}:{run.metric.line}, which "
                               f"logs seed {run.seed}")
            evidence.append(Evidence(file=run.log, line=run.metric.line,
                                     values={**values, "logged_seed": run.seed, key: result.elsewhere.value}))
        elif result.logs:
            mismatched.append(result.seed)
            shown = {name: finite(getattr(c.run_metric(name), key, math.nan)) for name in result.logs}
            evidence.append(Evidence(file=result.logs[0], values={**values, "logged": shown}))
        else:
            missing.append(result.seed)
            evidence.append(Evidence(values={**values, "logged": None}))
    total, matched = len(results), sum(1 for r in results if r.match is not None)
    if mismatched:
        return Finding(check, FAIL, f"per-seed {key}: seed(s) {listed(mismatched)} differ from their logs "
                       f"({matched} of {total} match).", evidence)
    if mislabelled:
        return Finding(check, WARN, f"per-seed {key}: a mislabelled seed: " + "; ".join(mislabelled) +
                       f" ({matched} of {total} match their own seed's log).", evidence)
    if missing:
        return Finding(check, WARN, f"per-seed {key}: no log states seed(s) {listed(missing)} "
                       f"({matched} of {total} match).", evidence)
    return Finding(check, PASS, f"per-seed {key}: all {total} claimed values match their seed's log.", evidence)


def _secondary(c: Context, key: str, claims: list[SecondaryClaim]) -> Finding:
    """Other values of this metric that submission.json states: each should be something a log gives."""
    matched, unmatched, evidence = [], [], []
    for claim in claims:
        label = claim.key + (f" of seed {claim.seed}" if claim.seed is not None else "")
        logs = {name: log for name, log in c.logs.items() if claim.seed is None or log.seed == claim.seed}
        found = match_claim(logs, key, claim.value) if logs else None
        if found is not None:
            matched.append(f"{label} {claim.value} ({found.describe()})")
            evidence.append(Evidence(file=found.runs[0].log, line=found.runs[0].metric.line,
                                     values={"key": claim.key, "claimed": claim.value, key: found.value}))
            continue
        trained = _in_training(logs, key, claim.value)
        if trained is not None:
            name, point = trained
            matched.append(f"{label} {claim.value} (in-training validation at step {point.step}, {name}:{point.line})")
            evidence.append(Evidence(file=name, line=point.line, values={"key": claim.key, "claimed": claim.value}))
            continue
        unmatched.append(f"{label} {claim.value}")
        evidence.append(Evidence(file=c.submission.metadata_file, values={"key": claim.key, "claimed": claim.value}))
    if unmatched:
        return Finding(f"claims.{key}", WARN, f"submission.json also states {listed(unmatched)}, which no log gives "
                       f"(not the score; {len(matched)} other stated value(s) match).", evidence)
    return Finding(f"claims.{key}", PASS, f"the other {key} value(s) submission.json states match the logs: "
                   f"{'; '.join(matched)}.", evidence)
