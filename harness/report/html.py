"""The HTML form: one self-contained page (inline CSS, plots as inline SVG, no scripts, nothing fetched)
that reads on a desktop and at phone width: the verdict's word and headline numbers, the plots, the
problems with their evidence, the per-seed table, then every finding and the measurements folded."""

from __future__ import annotations

import json
from html import escape
from pathlib import Path

from harness.findings import FAIL, PASS, SKIP, WARN, Finding, Verdict
from harness.report import summary
from harness.report.plots import Plot, render_plots

FOLD_CHARS = 1_500  # a text longer than this, or of several lines, is folded under its summary line

COLOURS = {PASS: "#1a7f37", FAIL: "#cf222e", WARN: "#9a6700", SKIP: "#6e7781"}
CSS = """
:root { color-scheme: light; --muted: #57606a; --line: #d0d7de; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif;
       color: #1f2328; background: #fff; }
main { max-width: 1040px; margin: 0 auto; padding: 16px; }
h1 { font-size: 1.35em; margin: 0 0 4px; overflow-wrap: anywhere; }
h2 { font-size: 1.1em; margin: 28px 0 8px; border-bottom: 1px solid var(--line); padding-bottom: 4px; }
.word { display: inline-block; padding: 2px 10px; border-radius: 6px; color: #fff; font-weight: 600; }
.meta { color: var(--muted); font-size: .9em; overflow-wrap: anywhere; }
dl.headline { display: grid; grid-template-columns: max-content 1fr; gap: 4px 16px; margin: 12px 0; }
dl.headline dt { font-weight: 600; } dl.headline dd { margin: 0; overflow-wrap: anywhere; }
.plots { display: grid; grid-template-columns: repeat(auto-fit, minmax(min(100%, 420px), 1fr)); gap: 16px; }
figure { margin: 0; border: 1px solid var(--line); border-radius: 8px; padding: 8px; }
figure.wide { grid-column: 1 / -1; }
figure svg { width: 100%; height: auto; display: block; }
figcaption { font-weight: 600; font-size: .95em; }
.note { color: var(--muted); font-size: .85em; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; width: 100%; font-size: .9em; }
th, td { border-bottom: 1px solid var(--line); padding: 4px 8px; text-align: left; vertical-align: top; }
td { overflow-wrap: anywhere; } td.check { overflow-wrap: normal; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.status { font-weight: 600; white-space: nowrap; }
.evidence { color: var(--muted); font-size: .9em; margin: 2px 0 0; padding-left: 1.2em; }
pre { white-space: pre-wrap; overflow-wrap: anywhere; background: #f6f8fa; padding: 8px; border-radius: 6px;
      font-size: .85em; }
details { margin: 8px 0; } summary { cursor: pointer; }
@media (max-width: 600px) { body { font-size: 14px; } main { padding: 10px; } th, td { padding: 3px 4px; } }
"""


def to_html(verdict: Verdict, reference: str | Path | None = None) -> str:
    """The page. reference: a submission folder whose logs are drawn as the reference loss curves."""
    plots = render_plots(verdict, reference)
    body = [_header(verdict), _plots(plots), _problems(verdict), _runs(verdict), _everything(verdict)]
    title = f"pgolf-harness {verdict.stage}: {summary.name_of(verdict)}: {summary.display_word(verdict)}"
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
            f"<title>{escape(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n<main>\n"
            + "\n".join(part for part in body if part) + "\n</main>\n</body>\n</html>\n")


def _header(verdict: Verdict) -> str:
    colour = COLOURS[summary.severity(verdict)]
    rows = "".join(f"<dt>{escape(label)}</dt><dd>{_text(text)}</dd>" for label, text in summary.headline(verdict))
    return (f"<h1>{escape(verdict.stage)}: {escape(summary.name_of(verdict))}</h1>\n"
            f"<p><span class=\"word\" style=\"background:{colour}\">{escape(summary.display_word(verdict))}</span> "
            f"{escape(summary.counts_text(verdict))}</p>\n"
            f"<p class=\"meta\">{escape(verdict.created)} · harness "
            f"{escape(verdict.harness_version)}, rules {escape(verdict.rules_version)}</p>\n"
            + (f"<dl class=\"headline\">{rows}</dl>" if rows else ""))


def _plots(plots: list[Plot]) -> str:
    figures = []
    for plot in plots:
        wide = " wide" if plot.name == "loss" else ""
        if plot.svg is None:
            continue
        note = f"<p class=\"note\">{escape(summary.clean(plot.note))}</p>" if plot.note else ""
        figures.append(f"<figure class=\"plot{wide}\" data-plot=\"{plot.name}\"><figcaption>{escape(plot.title)}"
                       f"</figcaption>\n{plot.svg}\n{note}</figure>")
    missing = [f"{plot.title}: {plot.note}" for plot in plots if plot.svg is None]
    notes = "".join(f"<li>{escape(summary.clean(text))}</li>" for text in missing)
    return ("<h2>Plots</h2>\n<div class=\"plots\">\n" + "\n".join(figures) + "\n</div>"
            + (f"\n<ul class=\"note\">{notes}</ul>" if notes else ""))


def _problems(verdict: Verdict) -> str:
    found = summary.problems(verdict)
    if not found:
        return f"<h2>Problems</h2>\n<p>None: all {len(verdict.findings)} findings passed.</p>"
    return (f"<h2>Problems ({len(found)} of {len(verdict.findings)} findings)</h2>\n"
            + _findings_table(found))


def _findings_table(findings: list[Finding]) -> str:
    rows = []
    for item in findings:
        rows.append(f"<tr><td class=\"status\" style=\"color:{COLOURS[item.status]}\">{item.status}</td>"
                    f"<td class=\"check\"><code>{escape(item.check).replace('.', '.<wbr>')}</code></td><td>{_text(summary.message_of(item))}"
                    f"{_evidence(item)}</td></tr>")
    return ("<div class=\"scroll\"><table><thead><tr><th>status</th><th>check</th><th>message and evidence</th>"
            "</tr></thead><tbody>\n" + "\n".join(rows) + "\n</tbody></table></div>")


def _evidence(item: Finding) -> str:
    lines = summary.evidence_lines(item)
    if not lines:
        return ""
    return "<ul class=\"evidence\">" + "".join(f"<li>{_text(line)}</li>" for line in lines) + "</ul>"


def _text(text: str) -> str:
    """Untrusted text: a short one inline; a long one (a traceback) as its summary line, the whole of it
    folded under it."""
    if not summary.is_long(text, FOLD_CHARS):
        return escape(text)
    return (f"<details><summary>{escape(summary.summary_line(text))}</summary><pre>{escape(text)}</pre>"
            "</details>")


def _runs(verdict: Verdict) -> str:
    headers, rows = summary.run_table(verdict)
    if not rows:
        return ""
    title = "Seeds (reproduced)" if summary.reproduced_runs(verdict) else "Logs in the folder"
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "\n".join("<tr>" + "".join(_cell(c, i) for i, c in enumerate(row)) + "</tr>" for row in rows)
    return (f"<h2>{title}</h2>\n<div class=\"scroll\"><table><thead><tr>{head}</tr></thead><tbody>\n{body}\n"
            "</tbody></table></div>")


def _cell(text: str, index: int) -> str:
    numeric = index > 0 and text.replace(",", "").replace(".", "").replace("-", "").isdigit()
    return f"<td class=\"num\">{escape(text)}</td>" if numeric else f"<td>{escape(text)}</td>"


def _everything(verdict: Verdict) -> str:
    measurements = escape(json.dumps(verdict.measurements, indent=2, default=str))
    return (f"<h2>Everything</h2>\n<details><summary>All {len(verdict.findings)} findings</summary>\n"
            + _findings_table(verdict.findings) + "\n</details>\n"
            f"<details><summary>Measurements</summary><pre>{measurements}</pre></details>")
