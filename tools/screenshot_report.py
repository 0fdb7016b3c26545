"""Look at an HTML report in a real browser: a PNG screenshot, and the page's layout as measured by the
browser (how wide the page is against the window, how tall each plot is drawn).

    python tools/screenshot_report.py runs/verify/2026-11-24_reference_tiny/verdict.html docs/example-report.png

Uses Chromium's own headless mode (Debian: `apt-get install chromium`); nothing else. The screenshot
of the bundled example's report in docs/ is made with the defaults (1000 x 1900 CSS pixels).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

BROWSERS = ("chromium", "chromium-browser", "google-chrome")
TIMEOUT_S = 60
# Appended to a copy of the page: when it has loaded, the title becomes the layout the browser made.
PROBE = ("<script>window.addEventListener('load', () => { const plots = [...document.querySelectorAll("
         "'figure svg')].map(s => Math.round(s.getBoundingClientRect().height)); document.title = "
         "JSON.stringify({page_width: document.documentElement.scrollWidth, window_width: window.innerWidth, "
         "plot_heights: plots}); });</script>")


def find_browser() -> str | None:
    return next((path for path in map(shutil.which, BROWSERS) if path), None)


def _run(browser: str, args: list[str], width: int, height: int) -> str:
    with tempfile.TemporaryDirectory(prefix="pgolf-browser-") as profile:
        command = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
                   f"--user-data-dir={profile}", f"--window-size={width},{height}", *args]
        done = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT_S, cwd=profile)
    if done.returncode != 0:
        raise RuntimeError(f"{Path(browser).name} exited with {done.returncode}: {done.stderr.strip()[-500:]}")
    return done.stdout


def screenshot(browser: str, page: Path, png: Path, width: int = 1000, height: int = 1900) -> None:
    _run(browser, [f"--screenshot={png.resolve()}", page.resolve().as_uri()], width, height)
    if not png.is_file():
        raise RuntimeError(f"{Path(browser).name} wrote no screenshot to {png}")


def layout(browser: str, page: Path, width: int) -> dict:
    """The page as the browser laid it out at this window width: page_width, window_width, plot_heights."""
    with tempfile.TemporaryDirectory(prefix="pgolf-probe-") as folder:
        probe = Path(folder) / page.name
        probe.write_text(page.read_text(encoding="utf-8").replace("</body>", PROBE + "</body>"), encoding="utf-8")
        dom = _run(browser, ["--dump-dom", probe.as_uri()], width, 1000)
    found = re.search(r"<title>(\{.*?\})</title>", dom)
    if not found:
        raise RuntimeError("the page's layout could not be read back (did it load?)")
    return json.loads(found.group(1))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("page", type=Path, help="the HTML report (verdict.html, or a --html FILE)")
    parser.add_argument("png", type=Path, help="where the screenshot goes")
    parser.add_argument("--width", type=int, default=1000)
    parser.add_argument("--height", type=int, default=1900)
    args = parser.parse_args(argv)
    browser = find_browser()
    if browser is None:
        sys.exit(f"screenshot_report: no browser found ({', '.join(BROWSERS)}); on Debian: apt-get install chromium")
    if not args.page.is_file():
        sys.exit(f"screenshot_report: {args.page}: no such file")
    try:
        screenshot(browser, args.page, args.png, args.width, args.height)
        measured = layout(browser, args.page, args.width)
    except (RuntimeError, subprocess.TimeoutExpired) as error:
        sys.exit(f"screenshot_report: {args.page}: {error}")
    print(f"{args.png}: {args.png.stat().st_size:,} bytes; page {measured['page_width']} px wide in a "
          f"{measured['window_width']} px window; plots drawn {measured['plot_heights']} px tall")
    return 0


if __name__ == "__main__":
    sys.exit(main())
