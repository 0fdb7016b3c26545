"""Training-loss curves from bench/train_step.py results, drawn as one SVG (no plotting library needed).

    python bench/plot_losses.py --out bench/results/train_step_h100_losses.svg \
        "ours=bench/results/train_step_h100.json" "baseline=bench/results/train_step_h100.json#baseline" ...

Each curve is LABEL=RESULT.json, optionally #ours (the default) or #baseline to pick the trainer inside
the result. The y axis covers the steps from --from-step on (the first steps' losses near ln(vocab)
would flatten everything after them). Reviewers look at the picture; the numbers stay in the JSON.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from xml.sax.saxutils import escape

WIDTH, HEIGHT = 880, 420
LEFT, RIGHT, TOP, BOTTOM = 64, 250, 24, 48
COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f")


def read_curve(spec: str) -> tuple[str, list[tuple[int, float]]]:
    """LABEL=PATH[#ours|#baseline] -> (label, [(step, train loss), ...]); exits with a one-line error."""
    label, sep, rest = spec.partition("=")
    if not sep or not label or not rest:
        sys.exit(f"plot_losses: {spec!r}: expected LABEL=RESULT.json[#ours|#baseline]")
    path, _, which = rest.partition("#")
    which = which or "ours"
    try:
        result = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        sys.exit(f"plot_losses: {path}: cannot read a JSON result ({exc})")
    losses = (result.get(which) or {}).get("train_losses") if isinstance(result, dict) else None
    if not isinstance(losses, dict) or not losses:
        sys.exit(f"plot_losses: {path}: no '{which}.train_losses' in this result")
    try:
        points = sorted((int(step), float(loss)) for step, loss in losses.items())
    except (TypeError, ValueError):
        sys.exit(f"plot_losses: {path}: '{which}.train_losses' must map steps to numbers")
    return label, points


def nice_ticks(lo: float, hi: float, count: int = 6) -> list[float]:
    """Round tick values (1, 2 or 5 times a power of ten apart) inside [lo, hi], about `count` of them."""
    raw = max(hi - lo, 1e-9) / count
    base = 10.0 ** math.floor(math.log10(raw))
    step = next(m * base for m in (1, 2, 5, 10) if m * base >= raw)
    first = math.ceil(lo / step) * step
    return [round(first + i * step, 10) for i in range(int((hi - first) / step + 1e-9) + 1)]


def render(curves: list[tuple[str, list[tuple[int, float]]]], from_step: int, title: str) -> str:
    shown = [(label, [(s, v) for s, v in pts if s >= from_step]) for label, pts in curves]
    shown = [(label, pts) for label, pts in shown if pts]
    if not shown:
        sys.exit(f"plot_losses: no logged step at or after --from-step {from_step}")
    steps = [s for _, pts in shown for s, _ in pts]
    values = [v for _, pts in shown for _, v in pts]
    x0, x1 = min(steps), max(steps)
    pad = 0.05 * (max(values) - min(values) or 1.0)
    y0, y1 = min(values) - pad, max(values) + pad
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    px = lambda s: LEFT + (s - x0) / max(x1 - x0, 1) * plot_w
    py = lambda v: TOP + (y1 - v) / (y1 - y0) * plot_h
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
           f'font-family="sans-serif" font-size="12">',
           f'<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/>',
           f'<text x="{LEFT}" y="16" font-size="13">{escape(title)}</text>',
           f'<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#444"/>']
    for v in nice_ticks(y0, y1):
        out.append(f'<line x1="{LEFT}" x2="{LEFT + plot_w}" y1="{py(v):.1f}" y2="{py(v):.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{LEFT - 6}" y="{py(v) + 4:.1f}" text-anchor="end">{v:g}</text>')
    for s in nice_ticks(x0, x1):
        out.append(f'<text x="{px(s):.1f}" y="{TOP + plot_h + 16}" text-anchor="middle">{s:g}</text>')
    out.append(f'<text x="{LEFT + plot_w / 2}" y="{HEIGHT - 10}" text-anchor="middle">step</text>')
    out.append(f'<text x="14" y="{TOP + plot_h / 2}" transform="rotate(-90 14 {TOP + plot_h / 2})" '
               f'text-anchor="middle">train loss</text>')
    for i, (label, pts) in enumerate(shown):
        colour = COLOURS[i % len(COLOURS)]
        path = " ".join(f"{px(s):.1f},{py(v):.1f}" for s, v in pts)
        out.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="1.6"/>')
        ly = TOP + 14 + 18 * i
        out.append(f'<line x1="{LEFT + plot_w + 12}" x2="{LEFT + plot_w + 32}" y1="{ly - 4}" y2="{ly - 4}" '
                   f'stroke="{colour}" stroke-width="2"/>')
        out.append(f'<text x="{LEFT + plot_w + 38}" y="{ly}">{escape(label)}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("curves", nargs="+", help="LABEL=RESULT.json[#ours|#baseline]")
    parser.add_argument("--out", required=True, type=Path, help="SVG file to write")
    parser.add_argument("--from-step", type=int, default=50)
    parser.add_argument("--title", default="training loss per logged step (bench/train_step.py)")
    args = parser.parse_args()
    svg = render([read_curve(spec) for spec in args.curves], args.from_step, args.title)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(svg, encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
