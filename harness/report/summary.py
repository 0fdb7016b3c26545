"""What every form of a report says, worked out once from a verdict: its word, the headline numbers,
the problems in order, one row per seed or log, and untrusted text made printable and short.

Messages and evidence can hold text a submission wrote (a worker's traceback, torch's multi-paragraph
unpickling error); it is cleaned of terminal escapes here, and summarised to one line by the forms
that must stay short, with a pointer to where the full text is kept.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from harness import rules
from harness.findings import FAIL, PASS, SKIP, WARN, Finding, Verdict

PROBLEM_ORDER = {FAIL: 0, WARN: 1, SKIP: 2, PASS: 3}
LONG_TEXT_CHARS = 400  # a string longer than this, or of several lines, is summarised in short forms
SUMMARY_CHARS = 160  # the most a summary line keeps
TAIL_SEPARATOR = " | "  # how the judges join the last lines of a worker's output into one value
_ESCAPES = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b[@-_]")
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_ERROR_LINE = re.compile(r"(Error|Exception|error:|Killed|Timeout)")

Shorten = Callable[[str, str], str]  # (key, cleaned text) -> the text a form shows


def clean(value: Any) -> str:
    """Text made printable: terminal escape sequences and control characters dropped, tabs as spaces."""
    text = _ESCAPES.sub("", str(value)).replace("\r\n", "\n").replace("\r", "\n").replace("\t", "    ")
    return "\n".join(line.rstrip() for line in _CONTROLS.sub("", text).strip().split("\n"))


def is_long(text: str, most: int = LONG_TEXT_CHARS) -> bool:
    return "\n" in text or len(text) > most


def summary_line(text: str, tail: bool = False) -> str:
    """One line standing for a long text: its first line, or for the last lines of an output (`tail`) or
    a traceback the last line naming an error; at most SUMMARY_CHARS, cut between words."""
    lines = [line.strip() for part in text.split("\n") for line in part.split(TAIL_SEPARATOR) if line.strip()]
    if not lines:
        return ""
    line = lines[0]
    if tail or line.startswith("Traceback"):  # a traceback's news is its last line
        line = next((item for item in reversed(lines) if _ERROR_LINE.search(item)), lines[-1])
    if len(line) > SUMMARY_CHARS:
        cut = line.rfind(" ", 0, SUMMARY_CHARS)
        line = line[:cut if cut > SUMMARY_CHARS // 2 else SUMMARY_CHARS].rstrip(" ,;:")
    return line


def summarised(text: str, full_text: str | None, tail: bool = False) -> str:
    """A long text as one line plus where the rest is: "<line> [summarised from N lines, M characters;
    full text: PATH]"."""
    lines = text.count("\n") + 1
    size = f"{lines} lines, {len(text):,} characters" if lines > 1 else f"{len(text):,} characters"
    where = f"full text: {full_text}" if full_text else "--all prints it in full"
    return f"{summary_line(text, tail)} [summarised from {size}; {where}]"


def shortener(full_text: str | None) -> Shorten:
    """The console's and the PR comment's rule: long texts become one line pointing at full_text."""
    def shorten(key: str, text: str) -> str:
        return summarised(text, full_text, tail=key.endswith("tail")) if is_long(text) else text
    return shorten


def keep(key: str, text: str) -> str:
    return text


def message_of(item: Finding, shorten: Shorten = keep) -> str:
    return shorten("message", clean(item.message))


def evidence_lines(item: Finding, shorten: Shorten = keep) -> list[str]:
    """One line per piece of evidence: "file:line (key=value, ...)", then its excerpt."""
    lines = []
    for ev in item.evidence:
        values = ", ".join(f"{key}={_value(key, value, shorten)}" for key, value in ev.values.items())
        location = clean(ev.location())
        text = f"{location} ({values})" if location and values else location or values
        if text:
            lines.append(text)
        if ev.excerpt:
            lines.append("> " + shorten("excerpt", clean(ev.excerpt)))
    return lines


def _value(key: str, value: Any, shorten: Shorten) -> str:
    return shorten(key, clean(value)) if isinstance(value, str) else clean(value)


def problems(verdict: Verdict) -> list[Finding]:
    """The findings that are not passes: failures, then warnings, then skips (each in verdict order)."""
    return sorted((f for f in verdict.findings if f.status != PASS), key=lambda f: PROBLEM_ORDER[f.status])


def plural(count: int, one: str, many: str | None = None) -> str:
    return f"{count} {one if count == 1 else many or one + 's'}"


def counts_text(verdict: Verdict) -> str:
    counts = verdict.counts()
    return f"{counts[PASS]} passed, {counts[FAIL]} failed, {counts[WARN]} warned, {counts[SKIP]} skipped"


def word(verdict: Verdict) -> str:
    """The verdict's status word: verify's (verified, verified_with_warnings, not_verified, incomplete),
    incomplete when a stage could not produce its number, else the outcome (fail, warn, pass, skip)."""
    measured = verdict.measurements
    if measured.get("verify_status"):
        return str(measured["verify_status"])
    if measured.get("incomplete_because") and verdict.outcome != FAIL:
        return "incomplete"
    return verdict.outcome


def display_word(verdict: Verdict) -> str:
    return word(verdict).upper().replace("_", " ")


def severity(verdict: Verdict) -> str:
    """The status whose colour the word takes: fail for anything not verified or incomplete."""
    if word(verdict) in ("not_verified", "incomplete"):
        return FAIL
    return verdict.outcome


def name_of(verdict: Verdict) -> str:
    return Path(verdict.submission).name or verdict.submission


# ---- runs: one row per reproduced seed or submitted log ----------------------------------------------

@dataclass
class Run:
    """One training run the verdict knows numbers of: a reproduced seed (verify) or a folder's log."""

    label: str
    seed: int | None = None
    status: str | None = None  # the runner's status, reproduced runs only
    claimed_val_bpb: float | None = None
    val_bpb: float | None = None  # the run's own final score (reproduced or logged)
    val_loss: float | None = None
    trusted_val_bpb: float | None = None
    total_bytes: int | None = None
    code_bytes: int | None = None
    model_bytes: int | None = None
    train_time_s: float | None = None
    eval_time_s: float | None = None
    log: str | None = None  # where its log is, when known
    reproduced: bool = False


def reproduced_runs(verdict: Verdict) -> list[Run]:
    claimed = _claimed_per_seed(verdict)
    runs = []
    for item in verdict.measurements.get("per_seed") or []:
        seed = item.get("seed")
        runs.append(Run(
            label=f"seed {seed}", seed=seed, status=item.get("status"), claimed_val_bpb=claimed.get(str(seed)),
            val_bpb=item.get("own_val_bpb"), val_loss=item.get("own_val_loss"),
            trusted_val_bpb=item.get("trusted_val_bpb"), total_bytes=item.get("total_bytes"),
            code_bytes=item.get("code_bytes"), model_bytes=item.get("artifact_bytes"),
            train_time_s=item.get("train_time_s"), eval_time_s=item.get("eval_time_s"),
            log=item.get("log"), reproduced=True))
    return runs


def submitted_runs(verdict: Verdict) -> list[Run]:
    """The folder's own logs (measurements.logs of the check stage), each at its path in the folder."""
    claimed = _claimed_per_seed(verdict)
    losses = {item.get("log"): item.get("val_loss") for item in (verdict.measurements.get("score") or {}).get("per_run", [])}
    runs = []
    for name, item in sorted((verdict.measurements.get("logs") or {}).items()):
        seed = item.get("seed")
        runs.append(Run(
            label=name, seed=seed, claimed_val_bpb=claimed.get(str(seed)), val_bpb=item.get("val_bpb"),
            val_loss=item.get("val_loss", losses.get(name)), total_bytes=item.get("total_bytes"),
            code_bytes=item.get("code_bytes"), model_bytes=item.get("model_bytes"),
            train_time_s=item.get("train_time_s"), eval_time_s=item.get("eval_time_s"),
            log=str(Path(verdict.submission) / name)))
    return runs


def runs_of(verdict: Verdict) -> list[Run]:
    """The runs a per-seed table shows: the reproduced seeds when there are any, else the folder's logs."""
    return reproduced_runs(verdict) or submitted_runs(verdict)


def _claimed_per_seed(verdict: Verdict) -> dict[str, float]:
    claimed = verdict.measurements.get("claimed") or {}
    return {str(seed): value for seed, value in (claimed.get("seed_val_bpb") or {}).items()
            if _finite(value)}


def _finite(value: Any) -> bool:
    """A number that is not NaN or infinite, nor an int too large for a float (a log can state one)."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def numbers(values: list[Any]) -> list[float]:
    return [float(v) for v in values if _finite(v)]


def bpb_per_nat(verdict: Verdict) -> float | None:
    """val_bpb / val_loss of this split (tokens per byte / ln 2): what turns the margin in nats into bpb."""
    claimed = verdict.measurements.get("claimed") or {}
    pairs = [(claimed.get("val_bpb"), claimed.get("val_loss"))]
    pairs += [(run.val_bpb, run.val_loss) for run in runs_of(verdict)]
    pairs.append((verdict.measurements.get("val_bpb"), verdict.measurements.get("val_loss")))
    for bpb, loss in pairs:
        if _finite(bpb) and _finite(loss) and loss > 0:
            return bpb / loss
    return None


# ---- the headline: the numbers that matter, as (label, text) rows --------------------------------------

def headline(verdict: Verdict, shorten: Shorten = keep) -> list[tuple[str, str]]:
    """(label, text) rows: the folder, why the verdict is incomplete, the scores, bytes, times, the
    hardware, the significance test and the compliance scan, each when the verdict has it."""
    why = verdict.measurements.get("incomplete_because")
    rows = [(verdict.stage, clean(verdict.submission)), ("why", shorten("why", clean(why)) if why else None),
            ("val_bpb", _scores(verdict)), ("bytes", _bytes(verdict)), ("time", _times(verdict)),
            ("runs", _hardware(verdict)), ("significance", _significance(verdict)),
            ("compliance", verdict.measurements.get("compliance_verdict"))]
    return [(label, str(text)) for label, text in rows if text]


def _scores(verdict: Verdict) -> str | None:
    measured = verdict.measurements
    claimed = (measured.get("claimed") or {}).get("val_bpb")
    parts = [f"claimed {claimed:.6f}"] if _finite(claimed) else []
    reproduced = reproduced_runs(verdict)
    if reproduced:
        own = numbers([run.val_bpb for run in reproduced])
        if _finite(measured.get("reproduced_val_bpb_mean")):
            parts.append(f"reproduced {measured['reproduced_val_bpb_mean']:.6f} (mean of {plural(len(own), 'seed')})")
        if _finite(measured.get("trusted_val_bpb_mean")):
            parts.append(f"trusted {measured['trusted_val_bpb_mean']:.6f}")
    elif _finite((measured.get("score") or {}).get("mean_val_bpb")):
        score = measured["score"]
        parts.append(f"logs {score['mean_val_bpb']:.6f} (mean of {score.get('runs', '?')})")
    if _finite(measured.get("val_bpb")):  # harness eval: the trusted number itself
        claim = next((f.evidence[0].values.get("claimed_val_bpb") for f in verdict.findings
                      if f.check == "eval.claim" and f.evidence), None)
        parts = ([f"claimed {claim:.6f}"] if _finite(claim) else []) + [f"trusted {measured['val_bpb']:.6f}"]
        if _finite(measured.get("tokens")):
            parts.append(f"{measured['tokens']:,} tokens")
    return ", ".join(parts) or None


def _bytes(verdict: Verdict) -> str | None:
    cap = f"cap {rules.ARTIFACT_CAP_BYTES:,}"
    measured = numbers([run.total_bytes for run in reproduced_runs(verdict)])
    if measured:
        return f"{max(measured):,.0f} measured (largest of {plural(len(measured), 'seed')}); {cap}"
    claimed = (verdict.measurements.get("claimed") or {}).get("bytes_total")
    logged = numbers([run.total_bytes for run in submitted_runs(verdict)])
    parts = [f"{claimed:,} claimed"] if _finite(claimed) else []
    if logged:
        parts.append(f"{max(logged):,.0f} logged (largest of {len(logged)})")
    return f"{', '.join(parts)}; {cap}" if parts else None


def _times(verdict: Verdict) -> str | None:
    reproduced = reproduced_runs(verdict)
    runs = reproduced or submitted_runs(verdict)
    train, own_eval = numbers([r.train_time_s for r in runs]), numbers([r.eval_time_s for r in runs])
    parts = []
    if train:
        parts.append(f"train {max(train):.1f} s")
    if own_eval:
        parts.append(f"evaluation {max(own_eval):.1f} s")
    wall = verdict.measurements.get("wall_s")
    if not parts and _finite(wall):  # harness eval
        return f"trusted evaluation {wall:.1f} s on {verdict.measurements.get('world_size', 1)} process(es)"
    if not parts:
        return None
    where = "longest seed" if reproduced else "longest log"
    limits = (f"limits {rules.TRAIN_TIME_LIMIT_S:g} s each" if rules.TRAIN_TIME_LIMIT_S == rules.EVAL_TIME_LIMIT_S else
              f"limits {rules.TRAIN_TIME_LIMIT_S:g} s and {rules.EVAL_TIME_LIMIT_S:g} s") + f" on {rules.REFERENCE_HARDWARE}"
    projection = verdict.measurements.get("time_projection") or {}
    factor = projection.get("factor")
    projected = f"; x{factor:g} projected: train {max(train) * factor:.1f} s" if _finite(factor) and train else ""
    return f"{', '.join(parts)} ({where}){projected}; {limits}"


def _hardware(verdict: Verdict) -> str | None:
    measured = verdict.measurements
    if not measured.get("hardware"):
        return None
    text = (f"{plural(len(measured.get('per_seed') or []), 'seed')} on {measured['hardware']}, "
            f"{plural(measured.get('nproc', 1), 'process', 'processes')}")
    if measured.get("shortened"):
        text += f"; training length set: {measured['shortened']}"
    return clean(text)


def _significance(verdict: Verdict) -> str | None:
    test = verdict.measurements.get("significance")
    if not isinstance(test, dict) or not _finite(test.get("p_value")):
        return None
    return (f"{test.get('metric')} improvement {test.get('improvement', math.nan):+.5f} over the reference "
            f"(margin {test.get('margin', math.nan):g}), p = {test['p_value']:.3g} ({test.get('policy', '?')} policy)")


def run_table(verdict: Verdict) -> tuple[list[str], list[list[str]]]:
    """The per-seed table (reproduced seeds, else the folder's logs) as headers and text cells."""
    reproduced = reproduced_runs(verdict)
    if reproduced:
        headers = ["seed", "status", "claimed", "own val_bpb", "trusted val_bpb", "total bytes", "train s", "eval s"]
        rows = [[str(run.seed), str(run.status or "-"), _fmt(run.claimed_val_bpb, ".6f"), _fmt(run.val_bpb, ".6f"),
                 _fmt(run.trusted_val_bpb, ".6f"), _fmt(run.total_bytes, ",.0f"), _fmt(run.train_time_s, ".1f"),
                 _fmt(run.eval_time_s, ".1f")] for run in reproduced]
        return headers, rows
    headers = ["log", "seed", "claimed", "val_bpb", "total bytes", "train s", "eval s"]
    rows = [[clean(run.label), _fmt(run.seed, "d"), _fmt(run.claimed_val_bpb, ".6f"), _fmt(run.val_bpb, ".6f"),
             _fmt(run.total_bytes, ",.0f"), _fmt(run.train_time_s, ".1f"), _fmt(run.eval_time_s, ".1f")]
            for run in submitted_runs(verdict)]
    return headers, rows


def _fmt(value: Any, spec: str) -> str:
    return format(value, spec) if _finite(value) else "-"
