"""`harness ci`: pull requests made in a miniature of the challenge's repository (records/<track>/<date>_<name>/
folders, old records from ../shared/fixtures/records/ when present, else written by the test), each judged
by layout and by the static check of the folder it adds; GitHub output (annotations, step summary,
verdict files) pinned by golden files; `--local`; usage errors; and `harness scan` on nothing to scan."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from harness import pipeline, rules
from harness.check.changes import LISTED, current_record, judge_changes, submission_folder_of
from harness.check.repository import Change, GitRepo
from harness.cli import main
from harness.cli.github import annotation
from harness.findings import FAIL, PASS, SKIP, WARN, Finding, finding
from harness.schemas import validation_errors
from submission_folders import GOOD_METADATA, write_submission

REPO_ROOT = Path(__file__).resolve().parents[1]
FIXTURE_RECORDS = REPO_ROOT.parent / "shared" / "fixtures" / "records"
GOLDEN = Path(__file__).parent / "golden"
RECORD = f"records/{rules.RECORD_TRACK}"
NEW = f"{RECORD}/2026-05-01_TinySubmission"
# Old records of the miniature: copies of two accepted records (submission.json and logs) when the shared
# fixtures are here, else folders written by the test under the same names.
OLD = ("2026-03-17_NaiveBaseline", "2026-03-19_SlidingWindowEval")
GIT_ENV = {"GIT_AUTHOR_NAME": "Submitter", "GIT_AUTHOR_EMAIL": "submitter@example.com",
           "GIT_COMMITTER_NAME": "Submitter", "GIT_COMMITTER_EMAIL": "submitter@example.com",
           "GIT_AUTHOR_DATE": "2026-05-01T12:00:00Z", "GIT_COMMITTER_DATE": "2026-05-01T12:00:00Z",
           "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True,
                          env=dict(os.environ, **GIT_ENV), check=True)
    return done.stdout.strip()


def commit(repo: Path, message: str) -> str:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD")


@pytest.fixture(scope="module")
def upstream(tmp_path_factory) -> Path:
    """The challenge's repository in miniature, one commit on main: a README and two dated records."""
    repo = tmp_path_factory.mktemp("challenge") / "parameter-golf"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / "README.md").write_text("# Parameter Golf (miniature)\n", encoding="utf-8")
    for name in OLD:
        fixture = FIXTURE_RECORDS / rules.RECORD_TRACK / name
        if fixture.is_dir():
            shutil.copytree(fixture, repo / RECORD / name)
        else:
            write_submission(repo / RECORD / name, metadata=dict(GOOD_METADATA, date=name[:10]))
    commit(repo, "two records")
    return repo


@pytest.fixture
def clone(upstream, tmp_path) -> Path:
    """A submitter's clone (origin = the miniature) on a branch `pr`."""
    repo = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(upstream), str(repo)], check=True, env=dict(os.environ, **GIT_ENV))
    git(repo, "checkout", "-q", "-b", "pr")
    return repo


def checks(verdict, check_id: str, status: str | None = None) -> list[Finding]:
    return [f for f in verdict.findings if f.check == check_id and (status is None or f.status == status)]


def gate(repo: Path, current: str | None = None):
    return pipeline.ci(str(repo), "origin/main", "HEAD", current)


# -- pull requests ----------------------------------------------------------------------------------

def test_a_valid_new_folder_passes_and_is_compared_with_the_newest_record(clone):
    write_submission(clone / NEW)
    commit(clone, "add a submission")
    verdict = gate(clone)
    assert [f.check for f in verdict.findings if f.status == FAIL] == []
    assert verdict.outcome in (PASS, WARN)
    assert verdict.submission == NEW
    assert [f.status for f in verdict.findings if f.check.startswith("ci.")] == [PASS] * 7
    record = checks(verdict, "ci.current_record")[0]
    assert record.evidence[0].file == f"{RECORD}/{OLD[1]}"  # the newest date, not the first name
    assert verdict.measurements["ci"]["current_record"] == f"{RECORD}/{OLD[1]}"
    assert verdict.measurements["ci"]["by_status"] == {"A": 4}
    # the folder's own findings name files from the repository root, as annotations need them
    required = [e.file for f in checks(verdict, "files.required") for e in f.evidence]
    assert f"{NEW}/train_gpt.py" in required and f"{NEW}/train.log" in required
    assert validation_errors(verdict.to_dict(), "verdict") == []
    assert "harness-ci-" not in json.dumps(verdict.to_dict())  # no scratch path leaks into the verdict


def test_editing_the_root_readme_fails_the_layout(clone):
    write_submission(clone / NEW)
    (clone / "README.md").write_text("# Parameter Golf\n\nmy row on the leaderboard\n", encoding="utf-8")
    commit(clone, "submission and leaderboard row")
    verdict = gate(clone)
    layout = checks(verdict, "ci.layout", FAIL)
    assert [(f.evidence[0].file, f.evidence[0].values["git_status"]) for f in layout] == [("README.md", "M")]
    assert "README.md is changed outside a submission folder (not under records/)" in layout[0].message
    assert checks(verdict, "ci.folders")[0].status == PASS  # the folder itself is still checked
    assert checks(verdict, "ci.checked")[0].status == PASS


def test_modifying_an_old_record_fails(clone):
    write_submission(clone / NEW)
    (clone / RECORD / OLD[0] / "submission.json").write_text('{"val_bpb": 1.0}\n', encoding="utf-8")
    commit(clone, "submission, and a better number for an old record")
    verdict = gate(clone)
    touched = checks(verdict, "ci.existing_record", FAIL)
    assert [f.evidence[0].file for f in touched] == [f"{RECORD}/{OLD[0]}/submission.json"]
    assert touched[0].evidence[0].values["record"] == f"{RECORD}/{OLD[0]}"
    assert "modifies the existing record" in touched[0].message


def test_renaming_an_old_record_is_touching_it(clone):
    git(clone, "mv", f"{RECORD}/{OLD[0]}", f"{RECORD}/2026-05-01_Renamed")
    commit(clone, "rename")
    verdict = gate(clone)
    touched = checks(verdict, "ci.existing_record", FAIL)
    assert touched and all("renames a file out of the existing record" in f.message for f in touched)
    assert set(verdict.measurements["ci"]["by_status"]) == {"R"}


def test_two_folders_fail_and_neither_is_checked(clone):
    write_submission(clone / NEW)
    write_submission(clone / f"records/{rules.NON_RECORD_TRACK}/2026-05-01_Other")
    commit(clone, "two submissions")
    verdict = gate(clone)
    folders = checks(verdict, "ci.folders", FAIL)[0]
    assert [e.file for e in folders.evidence] == [NEW, f"records/{rules.NON_RECORD_TRACK}/2026-05-01_Other"]
    assert "one pull request per submission" in folders.message
    assert verdict.submission == "origin/main...HEAD"
    assert {f.check.split(".")[0] for f in verdict.findings} == {"ci"}


def test_a_20mb_weights_file_fails_binary_and_size(clone):
    write_submission(clone / NEW, extra={"final_model.pt": b"\0PK" + bytes(20_000_000)})
    commit(clone, "submission with its weights")
    verdict = gate(clone)
    binary = checks(verdict, "ci.binary", FAIL)
    size = checks(verdict, "ci.file_size", FAIL)
    assert [f.evidence[0].file for f in binary] == [f"{NEW}/final_model.pt"]
    assert binary[0].evidence[0].values["bytes"] == 20_000_003
    assert "model weights or a data shard (.pt, 20,000,003 bytes)" in binary[0].message
    assert [f.evidence[0].file for f in size] == [f"{NEW}/final_model.pt"]


def test_a_small_binary_that_is_not_weights_passes_with_its_name(clone):
    write_submission(clone / NEW, extra={"plot.png": b"\x89PNG\r\n\x1a\n\0\0" + bytes(1000)})
    commit(clone, "submission with a plot")
    binary = checks(gate(clone), "ci.binary")[0]
    assert binary.status == PASS
    assert [(e.file, e.values["bytes"]) for e in binary.evidence] == [(f"{NEW}/plot.png", 1010)]


def test_a_malformed_submission_json_fails_with_its_line(clone):
    write_submission(clone / NEW, metadata='{\n  "name": "Tiny",\n  "val_bpb": 1.2345,\n}\n')
    commit(clone, "submission with a trailing comma")
    verdict = gate(clone)
    parse = checks(verdict, "metadata.parse", FAIL)
    assert parse and parse[0].evidence[0].file == f"{NEW}/submission.json"
    assert parse[0].evidence[0].line == 4
    assert all(f.status == PASS for f in verdict.findings if f.check in ("ci.layout", "ci.folders"))


def test_a_folder_without_code_never_passes(clone):
    folder = clone / NEW
    folder.mkdir(parents=True)
    (folder / "README.md").write_text("# an idea, code to follow\n", encoding="utf-8")
    commit(clone, "placeholder")
    verdict = gate(clone)
    assert checks(verdict, "ci.checked")[0].status == FAIL
    assert "nothing in records/track_10min_16mb/2026-05-01_TinySubmission could be scanned" in \
        checks(verdict, "ci.checked")[0].message
    assert verdict.outcome == FAIL


def test_a_pull_request_that_adds_no_folder_fails(clone):
    (clone / "README.md").write_text("# typo fixed\n", encoding="utf-8")
    commit(clone, "typo")
    verdict = gate(clone)
    assert checks(verdict, "ci.folders")[0].status == FAIL
    assert checks(verdict, "ci.file_size")[0].status == PASS
    assert verdict.outcome == FAIL


def test_current_record_given_as_a_folder_of_the_base(clone):
    write_submission(clone / NEW)
    commit(clone, "add a submission")
    verdict = gate(clone, current=f"{RECORD}/{OLD[0]}")
    record = checks(verdict, "ci.current_record")[0]
    assert record.status == PASS and record.evidence[0].file == f"{RECORD}/{OLD[0]}"
    assert "(--current-record)" in record.message


def test_newest_date_ties_go_to_the_lowest_claimed_score(clone):
    for name, bpb in (("2026-04-30_B", 1.10), ("2026-04-30_A", 1.20)):
        write_submission(clone / RECORD / name, metadata=dict(GOOD_METADATA, val_bpb=bpb))
    head = commit(clone, "two records on one day")
    record, how = current_record(GitRepo(clone), head)
    assert record == f"{RECORD}/2026-04-30_B"
    assert "the one claiming the lowest val_bpb" in how


def test_a_non_record_folder_is_not_compared(clone):
    write_submission(clone / f"records/{rules.NON_RECORD_TRACK}/2026-05-01_Idea")
    commit(clone, "non-record")
    record = checks(gate(clone), "ci.current_record")[0]
    assert record.status == SKIP and "no comparison" in record.message


# -- the judgement on plain data ---------------------------------------------------------------------

@pytest.mark.parametrize("path, folder, why", [
    ("records/track_10min_16mb/2026-05-01_X/train_gpt.py", "records/track_10min_16mb/2026-05-01_X", ""),
    ("records/track_10min_16mb/2026-05-01_X/sub/dir/a.py", "records/track_10min_16mb/2026-05-01_X", ""),
    ("records/track_other/2026-05-01_X/train_gpt.py", None, "records/track_other/ is not a track"),
    ("records/track_10min_16mb/notes.md", None, "directly in records/track_10min_16mb/"),
    ("train_gpt.py", None, "not under records/"),
])
def test_submission_folder_of(path, folder, why):
    found, reason = submission_folder_of(path)
    assert found == folder
    assert reason.startswith(why)


def test_many_paths_outside_are_listed_up_to_a_limit():
    changes = [Change("A", f"docs/page_{i}.md", size=10) for i in range(LISTED + 5)]
    layout = [f for f in judge_changes(changes, set()).findings if f.check == "ci.layout"]
    assert len(layout) == LISTED + 1
    assert layout[-1].message == "and 5 more such path(s), not listed one by one."


# -- the command line and GitHub output ------------------------------------------------------------

def normalised(text: str) -> str:
    """Golden files hold no commit ids or versions: those change with every run of the tests' git."""
    from harness import __version__
    text = re.sub(r"\b[0-9a-f]{40}\b", "<sha>", text)
    return text.replace(f"harness {__version__}", "harness <version>").replace(
        f"rules {rules.RULES_VERSION}", "rules <version>")


def assert_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.write_text(text, encoding="utf-8")
    assert text == path.read_text(encoding="utf-8"), f"{name} differs (UPDATE_GOLDEN=1 rewrites it after review)"


def test_github_mode_writes_summary_verdicts_and_pinned_annotations(clone, tmp_path, capsys, monkeypatch):
    write_submission(clone / NEW, metadata='{\n  "name": "Tiny",\n  "val_bpb": 1.2345,\n}\n')
    (clone / "README.md").write_text("# my row\n", encoding="utf-8")
    commit(clone, "submission, malformed, and a README edit")
    summary = tmp_path / "summary.md"
    summary.write_text("earlier step\n", encoding="utf-8")
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    code = main(["ci", "--repo", str(clone), "--base", "origin/main", "--out", str(tmp_path / "out")])
    out = capsys.readouterr().out
    assert code == 1
    lines = [line for line in out.splitlines() if line.startswith("::")]
    assert_golden("ci_annotations.txt", "\n".join(lines) + "\n")
    verdict = json.loads((tmp_path / "out" / "verdict.json").read_text(encoding="utf-8"))
    assert verdict["stage"] == "ci" and verdict["outcome"] == "fail"
    markdown = (tmp_path / "out" / "verdict.md").read_text(encoding="utf-8")
    assert summary.read_text(encoding="utf-8") == "earlier step\n" + markdown


def test_markdown_summary_is_pinned(clone, tmp_path, capsys):
    write_submission(clone / NEW)
    write_submission(clone / f"records/{rules.NON_RECORD_TRACK}/2026-05-01_Other")
    commit(clone, "two submissions")
    code = main(["ci", "--repo", str(clone), "--base", "origin/main", "--github", "--out", str(tmp_path)])
    assert code == 1
    capsys.readouterr()
    assert_golden("ci_two_folders.md", normalised((tmp_path / "verdict.md").read_text(encoding="utf-8")))


def test_local_compares_head_with_its_upstream(clone, capsys):
    git(clone, "branch", "-q", "--set-upstream-to", "origin/main")
    write_submission(clone / NEW)
    commit(clone, "add a submission")
    code = main(["ci", "--local", "--repo", str(clone), "--json"])
    captured = capsys.readouterr()
    assert code == 0
    assert "HEAD against @{upstream}" in captured.err
    verdict = json.loads(captured.out)
    assert verdict["measurements"]["ci"]["base"] == "@{upstream}"
    assert verdict["measurements"]["ci"]["base_commit"] == git(clone, "rev-parse", "origin/main")


def test_local_falls_back_to_origin_main(clone, capsys):
    write_submission(clone / NEW)
    commit(clone, "add a submission")  # branch `pr` tracks nothing
    assert main(["ci", "--local", "--repo", str(clone), "--json"]) == 0
    assert "HEAD against origin/main" in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["--base", "no-such-branch"], "no commit 'no-such-branch' in this repository"),
    (["--local", "--base", "origin/main"], "give either --local or --base/--head"),
    ([], "give --base REF"),
])
def test_usage_errors_are_one_line_and_exit_2(clone, capsys, argv, message):
    code = main(["ci", "--repo", str(clone), *argv])
    err = capsys.readouterr().err
    assert code == 2
    assert message in err and "Traceback" not in err


def test_not_a_repository_is_a_usage_error(tmp_path, capsys):
    assert main(["ci", "--repo", str(tmp_path), "--base", "main"]) == 2
    assert "is not a git repository" in capsys.readouterr().err


def test_annotation_escapes_and_places():
    item = finding("claims.val_bpb", WARN, "50% off,\nsecond line", file="records/t/x/a,b:c.log", line=7)
    assert annotation(item) == ("::warning file=records/t/x/a%2Cb%3Ac.log,line=7,title=claims.val_bpb::"
                                "50%25 off,%0Asecond line")
    decoded = finding("compliance.network", FAIL, "urlopen", file="records/t/x/train_gpt.py[decoded]", line=3)
    assert annotation(decoded) == "::error file=records/t/x/train_gpt.py,title=compliance.network::urlopen"
    assert annotation(finding("ci.folders", FAIL, "none")) == "::error title=ci.folders::none"


# -- harness scan on nothing ------------------------------------------------------------------------

def test_scan_of_a_folder_with_nothing_to_scan_exits_1(tmp_path, capsys):
    (tmp_path / "README.md").write_text("no code\n", encoding="utf-8")
    assert main(["scan", str(tmp_path)]) == 1
    assert "could be scanned" in capsys.readouterr().err
    (tmp_path / "train_gpt.py").write_text("def broken(:\n", encoding="utf-8")
    assert main(["scan", str(tmp_path)]) == 1
    (tmp_path / "train_gpt.py").write_text("print('hello')\n", encoding="utf-8")
    assert main(["scan", str(tmp_path)]) == 0


# -- tools/ci_history.py ----------------------------------------------------------------------------

def test_ci_history_runs_the_gate_on_each_record_adding_commit(clone, tmp_path):
    """A squash-merged record, a README edit (not a pull request that adds a record), and a merged pull
    request with two folders: the tool finds the two, runs the gate on each and tallies the reasons."""
    git(clone, "checkout", "-q", "main")
    write_submission(clone / NEW)
    squash = commit(clone, "a record, squash-merged")
    (clone / "README.md").write_text("# leaderboard\n", encoding="utf-8")
    commit(clone, "leaderboard")
    git(clone, "checkout", "-q", "-b", "two", "main~1")
    write_submission(clone / f"{RECORD}/2026-05-02_One")
    write_submission(clone / f"{RECORD}/2026-05-02_Two")
    commit(clone, "two folders")
    git(clone, "checkout", "-q", "main")
    git(clone, "merge", "-q", "--no-ff", "-m", "merge two", "two")
    out = tmp_path / "history.json"
    done = subprocess.run([sys.executable, str(REPO_ROOT / "tools" / "ci_history.py"), str(clone), "--ref", "main",
                           "--out", str(out)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    result = json.loads(out.read_text(encoding="utf-8"))
    assert [(r["kind"], r["exit"]) for r in result["per_pr"]] == [("merge", 1), ("squash", 0)]
    assert result["per_pr"][1]["commit"] == squash
    assert (result["pass"], result["fail"], result["merges"], result["squash_merged"]) == (1, 1, 1, 1)
    assert result["fail_by_check"] == {"ci.folders": 1}
    assert "2 pull requests (1 merges, 1 squash-merged): 1 pass, 1 fail, 0 errors" in done.stdout


def test_local_skips_an_upstream_that_already_holds_head(clone, upstream, capsys):
    """A submitter who pushed the branch to a copy of its own tracks that copy: nothing would be new
    against it, so the gate compares with origin/main."""
    write_submission(clone / NEW)
    commit(clone, "add a submission")
    git(clone, "push", "-q", "origin", "pr")
    git(clone, "fetch", "-q", "origin")
    git(clone, "branch", "-q", "--set-upstream-to", "origin/pr")
    try:
        assert main(["ci", "--local", "--repo", str(clone), "--json"]) == 0
    finally:
        git(upstream, "branch", "-q", "-D", "pr")
    assert "HEAD against origin/main" in capsys.readouterr().err
