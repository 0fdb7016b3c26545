"""The scan as the rest of the harness sees it: verdict -> findings, the CLI, the JSON, folders with
several scripts, auxiliary files, and the promise not to import torch or the submission."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from harness.cli import main
from harness.compliance import scan_path
from harness.findings import FAIL, PASS, SKIP, WARN
from harness.schemas import validation_errors

CASES = Path(__file__).resolve().parent / "compliance_cases"
REPO = Path(__file__).resolve().parents[1]


def _statuses(report) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for finding in report.findings():
        out.setdefault(finding.check, []).append(finding.status)
    return out


def test_flag_review_legal_and_clean_map_to_fail_warn_pass() -> None:
    flagged = _statuses(scan_path(CASES / "ttt_illegal_method.py"))
    assert flagged["compliance.ttt_order"] == [FAIL]
    assert flagged["compliance.network"] == [PASS]
    assert len(flagged) == 14  # the sources finding plus one per rule
    reviewed = _statuses(scan_path(CASES / "env_review_ci_probe.py"))
    assert reviewed["compliance.env_probe"] == [WARN]
    legal = scan_path(CASES / "ttt_legal_method.py").findings()
    ttt = [f for f in legal if f.check == "compliance.ttt_order"]
    assert [f.status for f in ttt] == [PASS] and ttt[0].message.startswith("legal: ChunkEvaluator.run scores each chunk")
    assert ttt[0].evidence[0].file == "ttt_legal_method.py" and ttt[0].evidence[0].line == 15
    assert ttt[0].evidence[0].excerpt == "F.cross_entropy(self.model.forward_logits(x).flatten(0, 1), y.flatten()).backward()"


def test_unparsable_code_skips_every_rule_and_asks_for_review(tmp_path: Path) -> None:
    (tmp_path / "train_gpt.py").write_text("def f(:\n    pass\n")
    report = scan_path(tmp_path)
    statuses = _statuses(report)
    assert report.verdict == "needs_review"
    assert statuses.pop("compliance.sources") == [WARN]
    assert set(map(tuple, statuses.values())) == {(SKIP,)}
    assert report.reasons == ["train_gpt.py could not be parsed (SyntaxError at line 1: invalid syntax)"]


def test_a_folder_without_python_or_with_an_empty_script_is_not_clean(tmp_path: Path) -> None:
    (tmp_path / "train.log").write_text("step:1 val_bpb:1.2\n")
    report = scan_path(tmp_path)
    expected = ["no Python code that runs was found (no .py entry, or only empty files)"]
    assert report.verdict == "needs_review" and report.reasons == expected
    (tmp_path / "train_gpt.py").write_text('"""nothing here"""\n')
    report = scan_path(tmp_path)
    assert report.verdict == "needs_review" and report.reasons == expected
    assert {f.status for f in report.findings() if f.check != "compliance.sources"} == {SKIP}


def test_auxiliary_scripts_give_notes_not_verdicts(tmp_path: Path) -> None:
    (tmp_path / "train_gpt.py").write_text((CASES / "val_legal_periodic_eval.py").read_text())
    (tmp_path / "download_data.py").write_text((CASES / "net_illegal_hf_hub.py").read_text())
    report = scan_path(tmp_path)
    assert report.verdict == "clean"
    assert [(h.rule, h.outcome, h.unit) for h in report.hits] == [("network", "note", "download_data.py")]
    network = [f for f in report.findings() if f.check == "compliance.network"]
    assert network[0].status == PASS and "1 note(s) in files the run does not reach" in network[0].message


def test_a_module_the_entry_imports_is_part_of_the_run(tmp_path: Path) -> None:
    (tmp_path / "train_gpt.py").write_text("from helpers import evaluate\n\ndef main(model, val_tokens):\n    return evaluate(model, val_tokens)\n")
    (tmp_path / "helpers.py").write_text((CASES / "ttt_illegal_helper.py").read_text())
    report = scan_path(tmp_path)
    assert {f["label"]: f["role"] for f in report.files} == {"train_gpt.py": "entry", "helpers.py": "reached"}
    assert report.verdict == "flag"


def test_scripts_of_one_folder_are_separate_programs(tmp_path: Path) -> None:
    """Without train_gpt.py every top-level script is an entry; same-named classes must not mix."""
    for name in ("train_a.py", "train_b.py"):
        (tmp_path / name).write_text((CASES / "ttt_legal_method.py").read_text())
    report = scan_path(tmp_path)
    assert report.verdict == "clean_with_legal_ttt"
    assert sorted(h.unit for h in report.hits if h.rule == "ttt_order") == ["train_a.py", "train_b.py"]


def test_cli_exit_codes_and_json(capsys) -> None:
    assert main(["scan", str(CASES / "ttt_illegal_alias.py")]) == 1
    assert main(["scan", str(CASES / "ttt_legal_score_first.py")]) == 0
    assert main(["scan", str(CASES / "dyn_review_importlib.py")]) == 0
    assert main(["scan", str(CASES / "dyn_review_importlib.py"), "--fail-on-review"]) == 1
    assert main(["scan", str(CASES / "no_such_file.py")]) == 2
    assert main(["scan", str(CASES / "README.md")]) == 2
    capsys.readouterr()
    assert main(["scan", str(CASES / "slot_illegal_delta.py"), "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["verdict"] == "flag"
    assert validation_errors(data, "compliance_scan") == []
    failed = [f for f in data["findings"] if f["status"] == "fail"]
    assert [f["check"] for f in failed] == ["compliance.slot"]
    assert failed[0]["evidence"][0]["line"] == 20


def test_cli_markdown(tmp_path: Path) -> None:
    out = tmp_path / "scan.md"
    assert main(["scan", str(CASES / "net_illegal_subprocess_pip.py"), "--markdown", str(out)]) == 1
    text = out.read_text()
    assert "**fail** | `compliance.network`" in text and text.rstrip().endswith("**compliance verdict: flag**")


def test_the_scanner_imports_neither_torch_nor_the_submission(tmp_path: Path) -> None:
    marker = tmp_path / "ran.txt"
    (tmp_path / "train_gpt.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\nimport torch\n")
    code = ("import sys; from harness.compliance import scan_path; "
            f"r = scan_path({str(tmp_path)!r}); "
            "assert 'torch' not in sys.modules, 'torch imported'; print(r.verdict)")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "clean" and not marker.exists()


def test_scan_corpus_tool_reports_one_line_per_folder_and_totals(tmp_path: Path) -> None:
    for name, case in (("a_clean", "val_legal_periodic_eval.py"), ("b_flag", "ttt_illegal_method.py")):
        folder = tmp_path / "records" / "track" / name
        folder.mkdir(parents=True)
        (folder / "train_gpt.py").write_text((CASES / case).read_text())
        (folder / "submission.json").write_text("{}")
    (tmp_path / "records" / "track" / "c_empty").mkdir()
    result = subprocess.run([sys.executable, str(REPO / "tools" / "scan_corpus.py"), "--jobs", "1", "--json",
                             str(tmp_path / "out.json"), str(tmp_path / "records")],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert [line.split()[0] for line in lines[:3]] == ["clean", "flag", "needs_review"]
    assert "clean: 1  clean_with_legal_ttt: 0  needs_review: 1  flag: 1" in result.stdout
    data = json.loads((tmp_path / "out.json").read_text())
    assert [r["hits"] for r in data["results"]][:2] == [{}, {"ttt_order:flag": 1}]


def test_cli_lists_the_rules(capsys) -> None:
    assert main(["scan", "--rules"]) == 0
    out = capsys.readouterr().out
    assert "compliance.target_in_key" in out and "#779" in out
    assert main(["scan"]) == 2
