"""One verdict rendered for people and machines: the console (console.py), Markdown for a pull-request
comment (markdown.py), one self-contained HTML page with plots (html.py, plots.py), and schema-valid JSON
(serial.py). Every form is made from the same Verdict; what they share (the word, the headline numbers,
the problems, the per-seed rows, untrusted text made safe) is worked out once in summary.py.

May import: findings, rules, errors, schemas, and harness.submission (to parse the logs a verdict
names, for the plots); never another stage (an import-linter contract in pyproject.toml). matplotlib is
imported only when a page is drawn.
"""

from harness.report.console import print_console
from harness.report.html import to_html
from harness.report.markdown import MARKDOWN_LIMIT, to_markdown
from harness.report.serial import load_verdict, verdict_json, write_json

__all__ = ["MARKDOWN_LIMIT", "load_verdict", "print_console", "to_html", "to_markdown", "verdict_json", "write_json"]
