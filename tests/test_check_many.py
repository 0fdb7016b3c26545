"""tools/check_many.py: finds submission folders in a tree, prints one line per folder and totals."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from harness import rules

REPO_ROOT = Path(__file__).resolve().parents[1]
TOOL = REPO_ROOT / "tools" / "check_many.py"
FOLDERS = ("2026-03-17_NaiveBaseline", "2026-03-18_LongContextSeq2048", "2026-04-09_A2_Muon097_3Seed")


@pytest.fixture
def small_tree(fixture_records: Path, tmp_path: Path) -> Path:
    root = tmp_path / "repo" / "records"
    for name in FOLDERS:
        shutil.copytree(fixture_records / rules.RECORD_TRACK / name, root / rules.RECORD_TRACK / name)
    (root / "README.md").write_text("not a submission\n")
    return tmp_path / "repo"


def test_one_line_per_folder_and_totals(small_tree: Path) -> None:
    done = subprocess.run([sys.executable, str(TOOL), str(small_tree), "--jobs", "2"], capture_output=True,
                          text=True, timeout=120)
    lines = done.stdout.splitlines()
    folder_lines = [line for line in lines if rules.RECORD_TRACK in line]
    assert len(folder_lines) == len(FOLDERS)
    for name, line in zip(FOLDERS, folder_lines):  # sorted by path; fixtures lack README.md and train_gpt.py
        assert line.startswith("FAIL") and "failed: files.required" in line
        assert f"records/{rules.RECORD_TRACK}/{name}" in line
    assert "3 folders: 3 fail" in done.stdout
    assert any(line.strip().startswith("claims.val_bpb") for line in lines)
    assert done.returncode == 1 and "Traceback" not in done.stderr


def test_no_submission_found_is_a_usage_error(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, str(TOOL), str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "no submission folder found" in done.stderr


def test_summary_counts_each_folder_once_per_check(tmp_path: Path) -> None:
    """--summary: per check id, folders that pass, warn, fail, skip it (a folder under its worst status)."""
    from submission_folders import write_submission

    track = tmp_path / "records" / rules.RECORD_TRACK
    write_submission(track / "2026-05-01_Good")
    write_submission(track / "2026-05-02_NoCode", omit=("train_gpt.py",))
    out = tmp_path / "summary.json"
    done = subprocess.run([sys.executable, str(TOOL), str(tmp_path / "records"), "--jobs", "1", "--summary",
                           "--summary-json", str(out)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    header = next(line for line in done.stdout.splitlines() if line.startswith("check "))
    assert header.split() == ["check", "fail", "warn", "pass", "skip"]
    row = next(line for line in done.stdout.splitlines() if line.startswith("files.required "))
    assert row.split()[1:] == ["1", "0", "1", "0"]  # the good folder passes; the other fails (worst status)
    summary = json.loads(out.read_text())
    assert summary["folders"] == 2 and summary["checks"]["files.required"] == {"fail": 1, "warn": 0, "pass": 1, "skip": 0}
    failing = summary["per_folder"][f"records/{rules.RECORD_TRACK}/2026-05-02_NoCode"]
    assert failing["statuses"]["files.required"] == "fail"
    assert any(f["check"] == "files.required" and "train_gpt.py is missing" in f["message"] for f in failing["failures"])
