"""The HTML report's plots, drawn by matplotlib (no display needed) as inline SVG: training loss per
seed against the folder's own logs and a reference record's; per-seed val_bpb against the claim, the
reproduced mean and the record margin; bytes and times as bars against their caps. Everything comes
from the verdict's measurements plus the log files it names (parsed by harness.submission.logs)."""

from __future__ import annotations

import io
import math
import re
from dataclasses import dataclass
from pathlib import Path

from harness import rules
from harness.findings import Verdict
from harness.report import summary
from harness.submission.folder import load_submission
from harness.submission.logs import parse_log, parse_submission_logs

PLOT_NAMES = ("loss", "val_bpb", "bytes", "time")
COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf")
REFERENCE_COLOUR = "#7f7f7f"
WIDE, NARROW = (8.0, 4.0), (5.2, 3.4)  # inches: the loss plot spans the page, the others share a row
PLOTTABLE = 1e15  # larger numbers are not measurements of a run (see drawable)
EARLY_FRACTION = 0.1  # the y axis of the loss plot leaves out the first tenth of the steps (ln(vocab) and spikes)


@dataclass
class Plot:
    name: str  # one of PLOT_NAMES
    title: str
    svg: str | None  # None when there was nothing to draw, and then `note` says why
    note: str = ""


@dataclass
class Curve:
    label: str
    steps: list[int]
    losses: list[float]
    colour: str
    style: str  # matplotlib line style


def render_plots(verdict: Verdict, reference: str | Path | None = None) -> list[Plot]:
    return [_loss_plot(verdict, reference), _score_plot(verdict), _bytes_plot(verdict), _time_plot(verdict)]


def loss_curves(verdict: Verdict, reference: str | Path | None = None) -> tuple[list[Curve], list[str]]:
    """Training-loss curves: the reproduced seeds (solid), the folder's own logs (dashed, the seed's
    colour) and the reference record's logs (grey, dotted); and a note per log that could not be read."""
    curves, missing = [], []
    reproduced, submitted = summary.reproduced_runs(verdict), summary.submitted_runs(verdict)
    seeds = [run.seed for run in reproduced + submitted]
    colour = {seed: COLOURS[index % len(COLOURS)] for index, seed in enumerate(dict.fromkeys(seeds))}
    for run in reproduced + submitted:
        if not run.log or not Path(run.log).is_file():
            missing.append(f"{run.label}: no log at {run.log}")
            continue
        parsed = parse_log(Path(run.log))
        label = (f"seed {run.seed} reproduced" if run.reproduced else
                 f"{_short(run.label)} submitted" if reproduced else _short(run.label))
        points = [(p.step, p.train_loss) for p in parsed.steps if drawable([p.train_loss])]
        curves.append(Curve(label, [step for step, _ in points], [loss for _, loss in points],
                            colour[run.seed], "-" if run.reproduced or not reproduced else "--"))
    if reference is not None:
        folder = load_submission(reference)
        for name, parsed in sorted(parse_submission_logs(folder).items()):
            points = [(p.step, p.train_loss) for p in parsed.steps if drawable([p.train_loss])]
            curves.append(Curve(f"reference {_short(name)}", [step for step, _ in points],
                                [loss for _, loss in points], REFERENCE_COLOUR, ":"))
    return [c for c in curves if c.steps], missing


def _loss_plot(verdict: Verdict, reference: str | Path | None) -> Plot:
    title = "Training loss per seed"
    curves, missing = loss_curves(verdict, reference)
    named = [f"reference: {summary.clean(Path(reference).resolve().name)}"] if reference is not None else []
    note = "; ".join(named + missing)
    if not curves:
        return Plot("loss", title, None, note or "no training-loss lines in the logs")
    fig, ax = _figure(WIDE)
    for curve in curves:
        ax.plot(curve.steps, curve.losses, curve.style, color=curve.colour, label=curve.label, linewidth=1.4)
    last = max(step for c in curves for step in c.steps)
    late = drawable([loss for c in curves for step, loss in zip(c.steps, c.losses) if step >= EARLY_FRACTION * last])
    if late:
        low, high = min(late), max(late)
        pad = 0.05 * (high - low or 1.0)
        ax.set_ylim(low - pad, high + pad)
    ax.set_xlabel("step")
    ax.set_ylabel("train loss (nats/token)")
    fig.legend(fontsize=8, loc="outside lower center", ncol=min(3, len(curves)), frameon=False)
    return Plot("loss", title, _svg(fig, "loss"), note)


def _score_plot(verdict: Verdict) -> Plot:
    title = "val_bpb per seed"
    runs = summary.runs_of(verdict)
    scored = [run for run in runs if drawable([run.val_bpb, run.trusted_val_bpb, run.claimed_val_bpb])]
    if not scored:
        return Plot("val_bpb", title, None, "no per-seed scores in this verdict")
    fig, ax = _figure(NARROW)
    xs = list(range(len(scored)))
    own = "reproduced (own)" if scored[0].reproduced else "logged"
    for values, marker, label, style in (
            ([r.claimed_val_bpb for r in scored], "o", "claimed", dict(facecolors="none", edgecolors="#444")),
            ([r.val_bpb for r in scored], "o", own, dict(color=COLOURS[0])),
            ([r.trusted_val_bpb for r in scored], "x", "trusted", dict(color=COLOURS[1]))):
        points = [(x, v) for x, v in zip(xs, values) if drawable([v])]
        if points:
            ax.scatter([p[0] for p in points], [p[1] for p in points], marker=marker, label=label, s=40, zorder=3, **style)
    claimed = (verdict.measurements.get("claimed") or {}).get("val_bpb")
    mean = drawable([r.val_bpb for r in scored])
    per_nat = summary.bpb_per_nat(verdict)
    if drawable([claimed]):
        ax.axhline(claimed, color="#444", linestyle="--", linewidth=1, label=f"claimed mean {claimed:.5f}")
        if per_nat:
            margin = rules.RECORD_MARGIN_NATS * per_nat
            ax.axhspan(claimed - margin, claimed + margin, color="#999", alpha=0.18,
                       label=f"claim ± {rules.RECORD_MARGIN_NATS} nats ({margin:.4f} bpb)")
    value = sum(mean) / len(mean) if mean else math.nan
    if math.isfinite(value):
        ax.axhline(value, color=COLOURS[0], linewidth=1, label=f"{own} mean {value:.5f}")
    _reference_lines(ax, verdict, per_nat)
    ax.set_xticks(xs, [_short(r.label) for r in scored], fontsize=8)
    ax.set_ylabel("val_bpb (lower is better)")
    ax.margins(x=0.2)
    ax.legend(fontsize=7, loc="best")
    return Plot("val_bpb", title, _svg(fig, "val_bpb"))


def _reference_lines(ax, verdict: Verdict, per_nat: float | None) -> None:
    """The significance test's reference mean and the bar a record must clear (mean minus the margin)."""
    test = verdict.measurements.get("significance")
    if not isinstance(test, dict) or not drawable([test.get("mean_ref"), test.get("margin")]):
        return
    scale = 1.0 if str(test.get("metric", "")).startswith("val_bpb") else per_nat
    if not scale:
        return
    mean_ref, margin = test["mean_ref"] * scale, test["margin"] * scale
    ax.axhline(mean_ref, color=REFERENCE_COLOUR, linestyle=":", linewidth=1, label=f"reference mean {mean_ref:.5f}")
    ax.axhline(mean_ref - margin, color=REFERENCE_COLOUR, linestyle="-.", linewidth=1, label="reference − margin")


def _bytes_plot(verdict: Verdict) -> Plot:
    title = f"Artifact bytes against the {rules.ARTIFACT_CAP_BYTES:,}-byte cap"
    runs = [run for run in summary.runs_of(verdict) if drawable([run.total_bytes])]
    totals = [drawable([run.total_bytes])[0] for run in runs]
    if not runs:
        return Plot("bytes", title, None, "no artifact sizes in this verdict")
    fig, ax = _figure(NARROW)
    ys = list(range(len(runs)))
    code = [(drawable([run.code_bytes]) or [0.0])[0] for run in runs]
    model = [total - c for total, c in zip(totals, code)]
    ax.barh(ys, code, color="#555", label="code")
    ax.barh(ys, model, left=code, color=COLOURS[0], label="compressed model")
    ax.axvline(rules.ARTIFACT_CAP_BYTES, color=COLOURS[1], linewidth=1.5, label="cap")
    for y, total in zip(ys, totals):
        ax.annotate(f" {total:,.0f} ({total / rules.ARTIFACT_CAP_BYTES:.1%})", (total, y), va="center", fontsize=8)
    ax.set_yticks(ys, [_short(r.label) for r in runs], fontsize=8)
    ax.set_xlim(min(0.0, *code), max(rules.ARTIFACT_CAP_BYTES, *totals) * 1.08)
    ax.xaxis.set_major_formatter(lambda value, _: f"{value / 1e6:g} MB")
    ax.legend(fontsize=7, loc="lower right")
    return Plot("bytes", title, _svg(fig, "bytes"))


def _time_plot(verdict: Verdict) -> Plot:
    limit = rules.TRAIN_TIME_LIMIT_S
    title = f"Training and evaluation time against the {limit:g} s limits"
    runs = [run for run in summary.runs_of(verdict) if drawable([run.train_time_s, run.eval_time_s])]
    if not runs:
        return Plot("time", title, None, "no training or evaluation times in this verdict")
    projection = verdict.measurements.get("time_projection") or {}
    factor = projection.get("factor") if drawable([projection.get("factor")]) else None
    scale = factor or 1.0
    fig, ax = _figure(NARROW)
    ys = list(range(len(runs)))
    height = 0.38
    for offset, values, label, colour in ((-height / 2, [r.train_time_s for r in runs], "train", COLOURS[2]),
                                          (height / 2, [r.eval_time_s for r in runs], "evaluation", COLOURS[3])):
        seconds = [(drawable([v]) or [0.0])[0] * scale for v in values]
        ax.barh([y + offset for y in ys], seconds, height=height, color=colour, label=label)
        for y, value in zip(ys, seconds):
            ax.annotate(f" {value:.1f} s", (value, y + offset), va="center", fontsize=7)
    ax.axvline(rules.TRAIN_TIME_LIMIT_S, color=COLOURS[1], linewidth=1.5, label=f"limit {limit:g} s")
    ax.set_yticks(ys, [_short(r.label) for r in runs], fontsize=8)
    longest = max(drawable([r.train_time_s for r in runs] + [r.eval_time_s for r in runs])) * scale
    ax.set_xlim(0, max(limit, rules.EVAL_TIME_LIMIT_S, longest) * 1.1)
    ax.set_xlabel(f"seconds, projected to {rules.REFERENCE_HARDWARE} (x{factor:g})" if factor else
                  "seconds as measured (not projected)")
    ax.legend(fontsize=7, loc="lower right")
    return Plot("time", title, _svg(fig, "time"))


def drawable(values: list) -> list[float]:
    """The finite numbers a plot can take: a log may state anything (1e308, inf), and an axis scaled to
    it overflows; beyond PLOTTABLE a number is left out of the plot (the tables still show it)."""
    return [float(v) for v in summary.numbers(values) if abs(v) < PLOTTABLE]


def _short(label: str) -> str:
    return re.sub(r"^train_?", "", summary.clean(label))[:24]


def _figure(size: tuple[float, float]):
    from matplotlib.figure import Figure  # no pyplot: no global state, no display backend

    fig = Figure(figsize=size, layout="constrained")
    ax = fig.add_subplot()
    ax.grid(True, alpha=0.3)
    ax.spines[["top", "right"]].set_visible(False)
    return fig, ax


def _svg(fig, name: str) -> str:
    """The figure as an <svg> element to put in the page: text kept as text (small, selectable), ids
    salted by the plot's name so that several plots in one page never share an id."""
    import matplotlib

    buffer = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": f"pgolf-{name}"}):
        fig.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None})
    text = buffer.getvalue()
    return text[text.index("<svg"):]
