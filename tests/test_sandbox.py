"""The sandbox runs untrusted code in a child: scrubbed env, time limit with group kill, no network.
The limits themselves are tried by hostile scripts in test_hostile.py."""

from __future__ import annotations

import sys

from process_helpers import kill_leftovers, new_token, processes_with

from harness.reproduce.sandbox import network_isolation_available, run_sandboxed, scrubbed_env


def test_child_does_not_inherit_secrets(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "secret-token")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret-key")
    env = scrubbed_env({"SEED": "42"})
    assert "HF_TOKEN" not in env and "AWS_SECRET_ACCESS_KEY" not in env
    assert env["SEED"] == "42"
    code = "import os; print(sorted(k for k in os.environ if 'SECRET' in k or 'TOKEN' in k)); print(os.environ['SEED'])"
    result = run_sandboxed([sys.executable, "-c", code], cwd=tmp_path, timeout_s=30, env={"SEED": "42"})
    assert result.ok
    assert result.tail[-2:] == ["[]", "42"]


def test_output_goes_to_log_and_callback(tmp_path):
    seen = []
    log = tmp_path / "out.log"
    code = "import sys\nfor i in range(3): print('line', i)\nsys.exit(3)"
    result = run_sandboxed([sys.executable, "-c", code], cwd=tmp_path, timeout_s=30, log_path=log, on_line=seen.append)
    assert result.returncode == 3 and not result.timed_out and not result.ok
    assert seen == ["line 0", "line 1", "line 2"]
    assert log.read_text().splitlines() == seen


def test_timeout_kills_the_whole_process_group(tmp_path):
    token = new_token()
    # The child starts a grandchild that would outlive it; both must die at the limit.
    code = (
        "import subprocess, sys, time\n"
        f"p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)', {token!r}])\n"
        "print('started', flush=True)\n"
        "time.sleep(60)\n"
    )
    try:
        result = run_sandboxed([sys.executable, "-c", code, token], cwd=tmp_path, timeout_s=3)
        assert result.timed_out and result.returncode is None and result.limit == "wall_clock"
        assert result.tail == ["started"]
        assert processes_with(token) == []
    finally:
        kill_leftovers(token)


def test_network_is_unreachable_where_the_os_allows(tmp_path):
    # The outside address is TEST-NET-1 (RFC 5737, never routed); it is only dialled inside the
    # isolated namespace, where the packet cannot leave the machine.
    code = (
        "import socket, sys\n"
        "if sys.argv[1] == 'isolated':\n"
        "    try:\n"
        "        socket.create_connection(('192.0.2.1', 80), timeout=2)\n"
        "        print('connected')\n"
        "    except OSError as e:\n"
        "        print('errno', e.errno)\n"
        "s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen()\n"
        "socket.create_connection(s.getsockname(), timeout=2); print('loopback ok')\n"
    )
    mode = "isolated" if network_isolation_available() else "open"
    result = run_sandboxed([sys.executable, "-c", code, mode], cwd=tmp_path, timeout_s=30)
    assert result.ok, result.tail
    assert result.network_isolated == (mode == "isolated")
    assert result.tail[-1] == "loopback ok"
    if mode == "isolated":
        assert result.tail[0] == "errno 101"  # ENETUNREACH: no route out of the namespace
