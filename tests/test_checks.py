"""The table of check ids: every id the harness emits has a row, an unknown id is refused, every
compliance rule has its row, and the README's check list is the table."""

from __future__ import annotations

import ast
import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from harness.checks import CHECKS, HARNESS, RULES_JSON, STAGES, lookup, markdown_table
from harness.findings import PASS, Finding, finding
from tests.conftest import SHARED

REPO_ROOT = Path(__file__).resolve().parents[1]
HARNESS_DIR = REPO_ROOT / "harness"
TOOL = REPO_ROOT / "tools" / "checks_table.py"
README = REPO_ROOT / "README.md"
# An id-shaped string: a stage, a dot, a name ("track" is the one id without a stage prefix).
ID_SHAPED = re.compile(rf"^({'|'.join(STAGES)})\.[a-z0-9_.]+$")


def _tool():
    spec = importlib.util.spec_from_file_location("checks_table", TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _static_ids() -> dict[str, str]:
    """Every string literal under harness/ passed as a check id to finding()/Finding() (first argument
    or check=), or shaped like an id (e.g. `_budget("judge.train_time", ...)`), with where it is."""
    found = {}
    for path in sorted(HARNESS_DIR.rglob("*.py")):
        if path.name == "checks.py" and path.parent == HARNESS_DIR:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            where = f"{path.relative_to(REPO_ROOT)}:{getattr(node, 'lineno', '?')}"
            if isinstance(node, ast.Call) and _called(node) in ("finding", "Finding"):
                arguments = node.args[:1] + [k.value for k in node.keywords if k.arg == "check"]
                found.update({a.value: where for a in arguments if isinstance(a, ast.Constant)})
            elif isinstance(node, ast.Constant) and isinstance(node.value, str) and ID_SHAPED.match(node.value):
                found[node.value] = where
    return found


def _called(call: ast.Call) -> str | None:
    return call.func.id if isinstance(call.func, ast.Name) else getattr(call.func, "attr", None)


def test_every_static_id_under_harness_is_in_the_table() -> None:
    found = _static_ids()
    assert {"files.required", "track", "compliance.sources", "data.tokenizer.sha256", "judge.train_time",
            "stats.significance"} <= set(found)  # the scan sees literals in all their forms
    missing = {check_id: where for check_id, where in found.items() if check_id not in CHECKS}
    assert missing == {}


def test_every_row_is_emitted_somewhere() -> None:
    """No dead rows: besides the compliance rules' rows (engine.py builds compliance.<rule id>) and the
    two score claims (check/claims.py builds claims.<key>), every id appears as a literal under harness/."""
    unused = set(CHECKS) - set(_static_ids())
    assert {c for c in unused if not c.startswith("compliance.")} == {"claims.val_bpb", "claims.val_loss"}


def test_every_row_is_well_formed() -> None:
    for check_id, row in CHECKS.items():
        assert row.id == check_id and row.stage in STAGES
        assert row.id == "track" or row.id.startswith(row.stage + "."), row
        assert row.title and not re.search(r"[\n<>|]", row.title), row
        assert row.rule == HARNESS or re.fullmatch(r"R\d\.\d(\.\d)?", row.rule), row
    assert lookup("judge.size").rule == "R1.1" and lookup("files.refused").rule == HARNESS


def test_every_cited_rule_is_a_section_of_rules_md() -> None:
    rules_md = SHARED / "RULES.md"
    if not rules_md.is_file():
        pytest.skip(f"{rules_md} not present")
    text = rules_md.read_text(encoding="utf-8")
    for row in CHECKS.values():
        if row.rule != HARNESS:
            assert f"- {'.'.join(row.rule.split('.')[:2])} " in text, row


def test_an_unknown_id_is_refused() -> None:
    with pytest.raises(KeyError, match="unknown check id 'claims.val_bpd'.*harness/checks.py"):
        lookup("claims.val_bpd")
    with pytest.raises(ValueError, match="'claims.val_bpd': not a check id"):
        finding("claims.val_bpd", PASS, "a typo in an id is a bug")
    with pytest.raises(ValueError, match="not a check id"):
        Finding("demo", PASS, "m")
    assert finding("claims.val_bpb", PASS, "m").check == "claims.val_bpb"


def test_every_compliance_rule_has_its_row() -> None:
    rules = json.loads(RULES_JSON.read_text(encoding="utf-8"))["rules"]
    for rule in rules:
        row = lookup(f"compliance.{rule['id']}")
        assert (row.stage, row.title.lower(), row.rule) == ("compliance", rule["title"].lower(), rule["sections"][0])
    compliance_rows = [check_id for check_id in CHECKS if check_id.startswith("compliance.")]
    assert compliance_rows == ["compliance.sources"] + [f"compliance.{rule['id']}" for rule in rules]


def test_markdown_table_has_one_row_per_check_in_order() -> None:
    lines = markdown_table().splitlines()
    assert lines[:2] == ["| id | stage | title | rule |", "| --- | --- | --- | --- |"]
    assert [line.split(" | ")[0].removeprefix("| `").rstrip("`") for line in lines[2:]] == list(CHECKS)
    assert lines[2] == "| `files.required` | files | README.md, submission.json, a train log and train_gpt.py are present | R6.1 |"


def test_readme_block_is_the_table() -> None:
    parts = _tool().split_block(README.read_text(encoding="utf-8"))
    if parts is None:
        pytest.skip("README.md has no <!-- checks:start --> ... <!-- checks:end --> lines yet")
    assert parts[1] == markdown_table(), "run python tools/checks_table.py"


def test_tool_rewrites_the_block_and_checks_it(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text("# Title\n\n<!-- checks:start -->\nold\n<!-- checks:end -->\n\nAfter.\n", encoding="utf-8")

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, str(TOOL), *args, str(readme)], capture_output=True, text=True)

    assert run("--check").returncode == 1
    assert run().returncode == 0
    assert readme.read_text(encoding="utf-8") == (
        "# Title\n\n<!-- checks:start -->\n" + markdown_table() + "<!-- checks:end -->\n\nAfter.\n")
    assert run("--check").returncode == 0
    readme.write_text("# No markers\n", encoding="utf-8")
    missing = run()
    assert missing.returncode == 2 and "checks:start" in missing.stderr
