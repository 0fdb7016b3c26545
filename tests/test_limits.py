"""The sandbox's limits as data and as the child sees them: policy defaults, the report of what was
enforced, rlimits and privileges inside the child, CUDA runs without an address-space limit, and the
commands that refuse to run (verify without network isolation, run-seeds with --out inside the folder).
The hostile scripts that try each limit are in test_hostile.py."""

from __future__ import annotations

import json
import math
import resource
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from fake_runs import make_fake_data, make_fake_submission

from harness import rules
from harness.cli import main
from harness.reproduce import cgroups, confinement, launcher, limits
from harness.reproduce.limits import LIMIT_NAMES, MEMORY, Limits, default_limits, is_enforced
from harness.reproduce.sandbox import network_isolation_available, run_sandboxed

REPO_ROOT = Path(__file__).resolve().parents[1]
SMALL = Limits(memory_bytes=1 << 30, tasks=64, file_bytes=16 << 20, open_files=256, cpu_s=7,
               work_dir_bytes=48 << 20, work_dir_files=1000, output_bytes=1 << 20, output_lines=1000,
               shm_bytes=16 << 20)
REPORT_CHILD = (
    "import json, resource\n"
    "names = ['AS', 'FSIZE', 'NOFILE', 'CPU', 'CORE']\n"
    "limits = {n: resource.getrlimit(getattr(resource, 'RLIMIT_' + n)) for n in names}\n"
    "status = dict(line.split(':', 1) for line in open('/proc/self/status'))\n"
    "print(json.dumps({'limits': limits, 'cap_eff': status['CapEff'].strip(),\n"
    "                  'no_new_privs': status['NoNewPrivs'].strip()}))\n"
)


def test_defaults_come_from_the_rules():
    policy = default_limits(100.0, uses_cuda=False)
    assert policy.memory_bytes == int(limits.machine_memory_bytes() * rules.SANDBOX_MEMORY_FRACTION)
    assert policy.shm_bytes == int(limits.machine_memory_bytes() * rules.SANDBOX_SHM_FRACTION)
    assert (policy.tasks, policy.file_bytes, policy.open_files) == (
        rules.SANDBOX_MAX_TASKS, rules.SANDBOX_MAX_FILE_BYTES, rules.SANDBOX_MAX_OPEN_FILES)
    assert (policy.work_dir_bytes, policy.work_dir_files) == (
        rules.SANDBOX_WORK_DIR_BYTES, rules.SANDBOX_WORK_DIR_FILES)
    assert (policy.output_bytes, policy.output_lines) == (rules.SANDBOX_OUTPUT_BYTES, rules.SANDBOX_OUTPUT_LINES)
    assert policy.cpu_s == math.ceil(100.0 * rules.SANDBOX_CPU_PER_WALL * limits.usable_cores())
    assert default_limits(100.0, uses_cuda=True).uses_cuda


def test_sizes_are_said_in_binary_units():
    assert [limits.size(n) for n in (1 << 30, 100 << 20, 1536 << 20, 1000)] == [
        "1 GiB", "100 MiB", "1.5 GiB", "1,000 bytes"]


def test_the_child_runs_under_the_rlimits_without_privileges(tmp_path):
    result = run_sandboxed([sys.executable, "-c", REPORT_CHILD], cwd=tmp_path, timeout_s=30, limits=SMALL)
    assert result.ok, result.tail
    seen = json.loads(result.tail[-1])
    assert seen["limits"]["AS"] == [1 << 30, 1 << 30]
    assert seen["limits"]["FSIZE"] == [16 << 20, 16 << 20]
    assert seen["limits"]["NOFILE"] == [256, 256]
    assert seen["limits"]["CPU"] == [7, 7 + launcher.CPU_GRACE_S]
    assert seen["limits"]["CORE"] == [0, 0]
    assert seen["cap_eff"] == "0000000000000000" and seen["no_new_privs"] == "1"


def test_every_limit_is_reported_enforced_or_not_with_the_reason(tmp_path):
    result = run_sandboxed([sys.executable, "-c", "pass"], cwd=tmp_path, timeout_s=30, limits=SMALL)
    assert list(result.enforced) == sorted(result.enforced, key=LIMIT_NAMES.index)
    assert set(result.enforced) == set(LIMIT_NAMES)
    for name, how in result.enforced.items():
        assert how and (is_enforced(how) or how.startswith("not enforced: ")), (name, how)
    assert result.enforced["file_size"] == "16 MiB per file (RLIMIT_FSIZE)"
    assert result.enforced["wall_clock"].startswith("30 s, then its")
    assert is_enforced(result.enforced["network"]) == network_isolation_available() == result.network_isolated


def test_limits_not_asked_for_are_said_so(tmp_path):
    result = run_sandboxed([sys.executable, "-c", "pass"], cwd=tmp_path, timeout_s=30, limits=Limits())
    assert result.ok
    for name in ("memory", "processes", "file_size", "open_files", "cpu_time", "work_dir", "output"):
        assert result.enforced[name] == "not enforced: no limit was asked for"


def test_a_cuda_run_gets_no_address_space_limit(tmp_path):
    if confinement.machine().cgroups[cgroups.MEMORY][0] is not None:
        pytest.skip("this machine bounds memory with a cgroup, which CUDA runs keep")
    result = run_sandboxed([sys.executable, "-c", REPORT_CHILD], cwd=tmp_path, timeout_s=30,
                           limits=replace(SMALL, uses_cuda=True))
    assert json.loads(result.tail[-1])["limits"]["AS"] == [resource.RLIM_INFINITY, resource.RLIM_INFINITY]
    assert result.enforced[MEMORY] == (
        "not enforced: a CUDA run, which RLIMIT_AS would break, and no usable memory cgroup")


def test_home_and_tmp_are_the_work_dirs(tmp_path):
    code = "import os, tempfile; print(os.environ['HOME']); print(tempfile.gettempdir())"
    result = run_sandboxed([sys.executable, "-c", code], cwd=tmp_path, timeout_s=30, limits=SMALL)
    assert result.tail == [str(tmp_path.resolve()), str(tmp_path.resolve() / ".tmp")]


def test_the_launcher_never_mounts_outside_a_user_namespace_of_its_own():
    # The test process is in the machine's own user namespace: confine_files must refuse before any mount.
    assert not launcher.in_own_user_namespace()
    with pytest.raises(launcher.ConfinementError, match="outside a user namespace of its own"):
        launcher.confine_files("/nonexistent-work-dir", [], None)


def test_hidden_paths_never_cover_the_work_dir(tmp_path, monkeypatch):
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".netrc").write_text("secret")
    monkeypatch.setenv("HOME", str(home))
    hidden = confinement.hidden_paths(tmp_path / "work", network_isolated=False)
    assert str(home / ".ssh") in hidden and str(home / ".netrc") in hidden and "/run" not in hidden
    # A run whose work dir lies under ~/.ssh (absurd, but possible) keeps its work dir visible.
    assert str(home / ".ssh") not in confinement.hidden_paths(home / ".ssh" / "work", network_isolated=False)


def test_cgroup_event_counters_are_read():
    assert cgroups._counter("low 0\nhigh 0\nmax 3\noom 1\noom_kill 2\n", "oom_kill") == 2
    assert cgroups._counter("max 7\n", "max") == 7 and cgroups._counter("", "max") == 0
    for controller, (hierarchy, why) in cgroups.available().items():
        assert (hierarchy is None) == bool(why), (controller, why)


def test_run_seeds_refuses_an_out_dir_inside_the_submission(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    make_fake_submission(tmp_path)
    make_fake_data(tmp_path)
    code = main(["run-seeds", "--seeds", "1", "--submission", "fake_submission", "--data", "data/datasets/tiny_sp1024",
                 "--env", "VOCAB_SIZE=1024", "--out", "fake_submission/runs"])
    assert code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == ["error: fake_submission/runs: is inside the submission folder, which every run copies; "
                     "choose another --out"]
    assert not (tmp_path / "fake_submission" / "runs").exists()


def test_verify_refuses_to_run_code_without_network_isolation(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("harness.pipeline.network_isolation_available", lambda: False)
    folder = REPO_ROOT / "submissions" / "2026-11-24_reference_tiny"
    code = main(["verify", str(folder), "--out", str(tmp_path / "verify")])
    assert code == 2
    lines = capsys.readouterr().err.strip().splitlines()  # the static check's stage line, then the refusal
    assert lines[-1].startswith("error: this machine cannot cut the runs off the network")
    assert lines[-1].endswith("pass --allow-network to run the submission's code anyway")
    assert not any("Traceback" in line for line in lines)
    assert not (tmp_path / "verify" / "runs").exists()


def test_a_cuda_run_gets_no_mount_namespace():
    """CUDA did not start under the read-only mount namespace on an H200 (error 304), and did under user,
    pid and network namespaces alone: a CUDA run keeps the pid and network namespaces, not the mounts."""
    from harness.reproduce import confinement
    from harness.reproduce.limits import Limits

    strongest = confinement.LEVELS[0]
    assert strongest.files and strongest.pids
    host = confinement.Machine("/usr/bin/unshare", strongest, (), {}, True)
    level = confinement.namespaces_for(Limits(uses_cuda=True), host)
    assert (level.files, level.pids, level.network) == (False, True, True)
    assert confinement.namespaces_for(Limits(uses_cuda=False), host) is strongest
    assert confinement.namespaces_for(Limits(uses_cuda=True), confinement.Machine(None, None, (), {}, True)) is None
