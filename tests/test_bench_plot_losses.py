"""bench/plot_losses.py: loss curves from train_step results as one SVG, and one-line errors for bad input."""

import json
import subprocess
import sys
import xml.dom.minidom
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "bench" / "plot_losses.py"


def run(*args):
    return subprocess.run([sys.executable, str(BENCH), *map(str, args)], capture_output=True, text=True, check=False)


def fake_result(path: Path, ours: dict, baseline: dict | None = None) -> Path:
    result = {"ours": {"train_losses": ours}}
    if baseline is not None:
        result["baseline"] = {"train_losses": baseline}
    path.write_text(json.dumps(result))
    return path


def test_draws_one_polyline_per_curve_inside_the_plot_from_the_chosen_step(tmp_path):
    result = fake_result(tmp_path / "r.json", {"1": 6.9, "50": 2.5, "100": 2.1, "200": 2.07},
                         {"1": 6.8, "50": 2.6, "100": 2.09, "200": 2.06})
    out = tmp_path / "plot.svg"
    proc = run("--out", out, "--from-step", 50, f"ours={result}", f"baseline & co={result}#baseline")
    assert proc.returncode == 0, proc.stderr
    doc = xml.dom.minidom.parse(str(out))
    lines = doc.getElementsByTagName("polyline")
    assert len(lines) == 2
    points = [tuple(map(float, p.split(","))) for p in lines[0].getAttribute("points").split()]
    assert len(points) == 3  # steps 50, 100, 200: step 1 is before --from-step
    assert points[0][0] < points[1][0] < points[2][0] and points[0][1] < points[2][1]  # lower loss is lower (larger y)
    texts = [t.firstChild.data for t in doc.getElementsByTagName("text") if t.firstChild]
    assert "baseline & co" in texts  # escaped in the file, read back as written


def test_bad_input_is_one_line_naming_the_file(tmp_path):
    missing = tmp_path / "missing.json"
    proc = run("--out", tmp_path / "p.svg", f"ours={missing}")
    assert proc.returncode != 0 and str(missing) in proc.stderr and "Traceback" not in proc.stderr
    no_baseline = fake_result(tmp_path / "r.json", {"10": 2.0})
    proc = run("--out", tmp_path / "p.svg", f"b={no_baseline}#baseline")
    assert proc.returncode != 0 and "baseline.train_losses" in proc.stderr and "Traceback" not in proc.stderr
    proc = run("--out", tmp_path / "p.svg", "no-equals-sign")
    assert proc.returncode != 0 and "LABEL=RESULT.json" in proc.stderr
    proc = run("--out", tmp_path / "p.svg", "--from-step", 500, f"ours={no_baseline}")
    assert proc.returncode != 0 and "--from-step" in proc.stderr
