"""The GitHub workflows of the submission gate: what makes them safe to run on pull requests from forks
(trigger, token permissions, no secrets where the pull request's files are, actions pinned to commits)
and what makes them work (the history the diff needs, the artifact the comment job reads). actionlint
checks their syntax in .ci/run; these tests pin the settings a syntax check cannot judge."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

yaml = pytest.importorskip("yaml", reason="PyYAML is in the test extra: pip install -e .[test]")

WORKFLOWS = Path(__file__).resolve().parents[1] / ".github" / "workflows"
GATE = WORKFLOWS / "submission-gate.yml"
COMMENT = WORKFLOWS / "submission-comment.yml"
PINNED = re.compile(r"^[\w.-]+/[\w.-]+@[0-9a-f]{40}$")
SECRET = re.compile(r"\$\{\{[^}]*\b(secrets\.|github\.token)")  # an expression that hands out a credential


def load(path: Path) -> dict:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["on"] = data.pop(True, data.get("on"))  # YAML 1.1 reads the key `on` as true
    return data


def steps(job: dict) -> list[dict]:
    return job.get("steps", [])


def uses(workflow: dict) -> list[str]:
    return [step["uses"] for job in workflow["jobs"].values() for step in steps(job) if "uses" in step]


def test_the_gate_runs_on_pull_request_with_a_read_only_token():
    gate = load(GATE)
    assert list(gate["on"]) == ["pull_request"]
    assert "labeled" in gate["on"]["pull_request"]["types"]
    assert gate["permissions"] == {"contents": "read"}
    assert all("permissions" not in job for job in gate["jobs"].values())  # no job widens it


@pytest.mark.parametrize("path", [GATE, COMMENT], ids=lambda p: p.name)
def test_no_pull_request_target_and_every_action_pinned_to_a_commit(path):
    text = path.read_text(encoding="utf-8")
    assert "pull_request_target" not in load(path)["on"]
    actions = uses(load(path))
    assert actions and all(PINNED.match(action) for action in actions), actions
    for line in text.splitlines():  # each pin says which release it is
        if "uses:" in line:
            assert re.search(r"@[0-9a-f]{40} # v\d+\.\d+\.\d+$", line), line


def test_the_untrusted_side_sees_no_secret_and_keeps_no_credentials():
    assert not SECRET.search(GATE.read_text(encoding="utf-8"))
    for job in load(GATE)["jobs"].values():
        for step in steps(job):
            if step.get("uses", "").startswith("actions/checkout@"):
                assert step["with"]["persist-credentials"] is False


def test_the_gate_diffs_the_full_history_runs_ci_and_uploads_the_verdict():
    job = load(GATE)["jobs"]["gate"]
    checkout = next(s for s in steps(job) if s.get("uses", "").startswith("actions/checkout@"))
    assert checkout["with"]["fetch-depth"] == 0
    harness = next(s for s in steps(job) if s.get("with", {}).get("path") == "pgolf-harness")
    # set in the file: repository variables do not reach workflows of pull requests from forks
    assert harness["with"]["repository"] == "${{ env.PGOLF_HARNESS_REPOSITORY }}"
    assert set(load(GATE)["env"]) == {"PGOLF_HARNESS_REPOSITORY", "PGOLF_HARNESS_REF"}
    runs = "\n".join(s.get("run", "") for s in steps(job))
    assert "pip install --disable-pip-version-check -e ./pgolf-harness" in runs
    assert "harness ci --repo submission --base HEAD^1 --head HEAD --github --out verdict" in runs
    upload = next(s for s in steps(job) if s.get("uses", "").startswith("actions/upload-artifact@"))
    assert upload["with"]["name"] == "verdict" and upload["with"]["path"] == "verdict/"
    assert upload["if"] == "${{ !cancelled() }}"  # the verdict goes up when the gate fails too


def test_the_gpu_job_runs_only_when_a_maintainer_adds_the_label():
    job = load(GATE)["jobs"]["verify-gpu"]
    assert job["runs-on"] == ["self-hosted", "gpu"]
    assert job["if"] == "github.event.action == 'labeled' && github.event.label.name == 'gpu-verify'"
    assert job["needs"] == "gate"
    assert "harness verify" in "\n".join(s.get("run", "") for s in steps(job))


def test_the_comment_job_runs_from_the_base_with_only_what_it_needs():
    comment = load(COMMENT)
    gate = load(GATE)
    assert list(comment["on"]) == ["workflow_run"]
    assert comment["on"]["workflow_run"]["workflows"] == [gate["name"]]
    assert comment["permissions"] == {"actions": "read", "pull-requests": "write"}
    job = comment["jobs"]["comment"]
    assert not any(s.get("uses", "").startswith("actions/checkout@") for s in steps(job))  # never the PR's code
    download = next(s for s in steps(job) if s.get("uses", "").startswith("actions/download-artifact@"))
    assert download["with"]["run-id"] == "${{ github.event.workflow_run.id }}"
    script = next(s for s in steps(job) if "run" in s)
    assert "*[!0-9]*" in script["run"]  # the artifact's PR number is data: digits or nothing
    assert script["env"]["HEAD_SHA"] == "${{ github.event.workflow_run.head_sha }}"
    assert not re.search(r"\$\{\{[^}]*secrets\.", COMMENT.read_text(encoding="utf-8"))


def test_both_workflows_pin_the_same_release_of_an_action():
    pins: dict[str, set[str]] = {}
    for path in (GATE, COMMENT):
        for action in uses(load(path)):
            name, sha = action.split("@")
            pins.setdefault(name, set()).add(sha)
    assert {name: len(shas) for name, shas in pins.items()} == {name: 1 for name in pins}
