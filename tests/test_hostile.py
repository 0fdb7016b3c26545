"""Hostile scripts (tests/hostile/) in the sandbox, on the CPU, with low limits: for each, the harness
survives, the run ends with the right reason, nothing outside the work dir changed, no canary was read,
nothing is left running. A test whose limit is not enforced on this machine skips with the reason the
sandbox gives (and every script stops by itself at a bound, so a silently missing limit cannot harm the
machine)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
import zlib
from dataclasses import asdict
from functools import lru_cache
from pathlib import Path

import pytest
from fake_runs import FAKE_SCRIPT, make_fake_data
from process_helpers import kill_leftovers, new_token, processes_with

from harness.reproduce.evaluation import EvalRequest, evaluate_submission
from harness.reproduce.limits import (
    CPU_TIME, FILE_SIZE, FILES, MEMORY, NETWORK, OPEN_FILES, OUTPUT, PROCESS_TREE, PROCESSES, SECRETS, WORK_DIR,
    Limits, is_enforced,
)
from harness.reproduce.runner import RunPlan, SeedResult, run_seed, run_seeds
from harness.reproduce.sandbox import SandboxResult, run_sandboxed

HOSTILE = Path(__file__).with_name("hostile")
HARNESS_CHECKOUT = Path(__file__).resolve().parents[1]
LIMITS = Limits(memory_bytes=1 << 30, tasks=64, file_bytes=16 << 20, open_files=256, cpu_s=60,
                work_dir_bytes=48 << 20, work_dir_files=10_000, output_bytes=1 << 20, output_lines=20_000,
                shm_bytes=16 << 20)
TIMEOUT_S = 30


@lru_cache(maxsize=1)
def enforced_here() -> dict[str, str]:
    """How each limit of LIMITS is enforced on this machine (the sandbox's own report of a trivial run)."""
    with _scratch() as work:
        return run_sandboxed([sys.executable, "-c", "pass"], cwd=work, timeout_s=10, limits=LIMITS).enforced


def require(*names: str) -> None:
    for name in names:
        how = enforced_here().get(name)
        if not is_enforced(how):
            pytest.skip(f"the {name} limit is {how or 'not reported'} on this machine")


class _scratch:
    """A throwaway work dir (for the probe run above, outside any test's tmp_path)."""

    def __enter__(self) -> Path:
        import tempfile

        self.directory = tempfile.TemporaryDirectory(prefix="pgolf-hostile-")
        return Path(self.directory.name)

    def __exit__(self, *exc) -> None:
        self.directory.cleanup()


class Scene:
    """One hostile run's surroundings: a fake HOME with canary credentials, a canary in our environment, a
    token marking the run's processes, and a snapshot of everything outside the work dir."""

    def __init__(self, tmp_path: Path, monkeypatch) -> None:
        self.root = tmp_path
        self.canary = f"canary-{uuid.uuid4().hex}"
        self.token = new_token()
        self.home = tmp_path / "home"
        (self.home / ".ssh").mkdir(parents=True)
        (self.home / ".ssh" / "id_rsa").write_text(f"-----BEGIN KEY----- {self.canary}\n")
        (self.home / ".netrc").write_text(f"machine example.com login me password {self.canary}\n")
        monkeypatch.setenv("HOME", str(self.home))
        monkeypatch.setenv("PGOLF_HOSTILE_CANARY", self.canary)
        self.work = tmp_path / "out" / "seed_1"
        self.before: dict[str, tuple[int, int]] | None = None

    def outside(self) -> dict[str, tuple[int, int]]:
        """Every file under tmp_path but the work dir and the runner's own outputs (size and time), and
        /tmp's names and the checkout's that carry our token or canary."""
        seen = {}
        for path in self.root.rglob("*"):
            if path.is_relative_to(self.work) or path.name.startswith("seed_1.json"):
                continue
            info = path.lstat()
            seen[str(path)] = (0, 0) if path.is_dir() else (info.st_size, info.st_mtime_ns)
        for directory in (Path("/tmp"), HARNESS_CHECKOUT):
            for name in os.listdir(directory):
                if self.token in name or self.canary in name:
                    seen[str(directory / name)] = (0, 0)
        return seen

    def mark(self) -> None:
        """Right before the run: what is outside the work dir, to compare with after it."""
        self.before = self.outside()

    def __enter__(self) -> Scene:
        return self

    def __exit__(self, *exc) -> None:
        left = kill_leftovers(self.token)
        if exc[0] is None and self.before is not None:  # (a skipped test never ran anything)
            assert left == [], f"processes left running: {left}"
            assert self.outside() == self.before, "something outside the work dir changed"

    def env(self, **extra: str) -> dict[str, str]:
        return {"HOSTILE_TOKEN": self.token, **extra}

    def assert_no_canary(self, *texts: str) -> None:
        for text in texts:
            assert self.canary not in text
        if self.work.is_dir():
            for path in self.work.rglob("*"):
                if path.is_file() and not path.is_symlink():
                    assert self.canary.encode() not in path.read_bytes(), path


@pytest.fixture
def scene(tmp_path, monkeypatch):
    with Scene(tmp_path, monkeypatch) as made:
        yield made


def run_as_seed(scene: Scene, script: str, limits: Limits = LIMITS, **env: str) -> SeedResult:
    """The hostile script as a seed's train_gpt.py, through the runner."""
    code = scene.root / "submission"
    code.mkdir(exist_ok=True)
    shutil.copyfile(HOSTILE / script, code / "train_gpt.py")
    dataset, tokenizer = make_fake_data(scene.root)
    plan = RunPlan(code_dir=code, dataset_dir=dataset, tokenizer_path=tokenizer, out_dir=scene.root / "out",
                   env=scene.env(**env), timeout_s=TIMEOUT_S, vocab_size=1024, limits=limits)
    plan.out_dir.mkdir(exist_ok=True)
    scene.mark()
    return run_seed(plan, 1)


def run_directly(scene: Scene, script: str, limits: Limits = LIMITS, **env: str) -> SandboxResult:
    """The hostile script through run_sandboxed, in the work dir."""
    scene.work.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(HOSTILE / script, scene.work / script)
    scene.mark()
    return run_sandboxed([sys.executable, script], cwd=scene.work, timeout_s=TIMEOUT_S, env=scene.env(**env),
                         limits=limits, log_path=scene.work / "console.txt")


def console(scene: Scene) -> str:
    return (scene.work / "console.txt").read_text(encoding="utf-8", errors="replace")


def test_memory_hog_is_stopped_by_the_memory_limit(scene):
    require(MEMORY)
    result = run_as_seed(scene, "memory_hog.py")
    assert result.status == "failed" and result.limit == MEMORY
    assert result.error.startswith("stopped by the memory limit (1 GiB")
    assert "memory_hog: never stopped" not in result.tail
    held = [int(line.split()[1]) for line in result.tail if line.startswith("holding")]
    assert held and max(held) < 1024  # stopped before 1 GiB was held
    assert json.loads((scene.root / "out" / "seed_1.json").read_text())["limit"] == MEMORY


def test_a_seed_stopped_by_a_limit_leaves_the_other_seeds_results(scene):
    require(MEMORY)
    code = scene.root / "submission"
    code.mkdir()
    shutil.copyfile(HOSTILE / "memory_hog.py", code / "memory_hog.py")
    shutil.copyfile(FAKE_SCRIPT, code / "fake_train_gpt.py")
    (code / "train_gpt.py").write_text("import os, runpy\nrunpy.run_path('memory_hog.py' if os.environ['SEED'] == '2' "
                                       "else 'fake_train_gpt.py', run_name='__main__')\n")
    dataset, tokenizer = make_fake_data(scene.root)
    plan = RunPlan(code_dir=code, dataset_dir=dataset, tokenizer_path=tokenizer, out_dir=scene.root / "runs",
                   env=scene.env(), timeout_s=TIMEOUT_S, vocab_size=1024, limits=LIMITS)
    results = run_seeds(plan, [1, 2, 3])
    assert [r.status for r in results] == ["ok", "failed", "ok"]
    assert results[1].limit == MEMORY and results[1].error.startswith("stopped by the memory limit")
    saved = {seed: json.loads((plan.out_dir / f"seed_{seed}.json").read_text()) for seed in (1, 2, 3)}
    assert [saved[seed]["status"] for seed in (1, 2, 3)] == ["ok", "failed", "ok"]
    assert json.loads((plan.out_dir / "summary.json").read_text())["failed"] == [2]


def test_fork_bomb_is_stopped_by_the_process_limit(scene):
    require(PROCESSES, PROCESS_TREE)
    result = run_as_seed(scene, "fork_bomb.py")
    assert result.status == "failed" and result.limit == PROCESSES, result.tail
    assert result.error.startswith("stopped by the processes limit (64 processes and threads")
    refused = [line for line in result.tail if line.startswith("fork refused after")]
    assert refused and int(refused[0].split()[3]) < 64
    assert processes_with(scene.token) == []


def test_a_file_past_the_file_size_limit_is_refused(scene):
    require(FILE_SIZE)
    result = run_as_seed(scene, "big_file.py")
    assert result.status == "failed" and result.limit == FILE_SIZE
    assert result.error.startswith("stopped by the file size limit (16 MiB per file")
    assert (scene.work / "big.bin").stat().st_size == 16 << 20


def test_filling_the_work_dir_is_stopped_by_its_cap(scene):
    result = run_as_seed(scene, "fill_work_dir.py")
    assert result.status == "failed" and result.limit == WORK_DIR
    assert result.error == "stopped by the work-dir limit: wrote more than 48 MiB in its work dir"
    written = sum(path.stat().st_size for path in scene.work.glob("fill_*.bin"))
    assert 48 << 20 < written < 200 << 20


def test_writes_outside_the_work_dir_are_refused(scene):
    require(FILES)
    targets = [scene.home / "planted.txt", Path("/tmp") / f"{scene.canary}.txt",
               HARNESS_CHECKOUT / f"escaped_{scene.token}", scene.root / "submission" / "planted.py"]
    (scene.root / "submission").mkdir()
    result = run_as_seed(scene, "write_outside.py", HOSTILE_TARGETS=os.pathsep.join(map(str, targets)))
    assert result.returncode == 0 and result.limit is None, result.tail
    attempts = [line for line in result.tail if line.startswith(("wrote", "refused"))]
    assert len(attempts) == 5 and all(line.endswith("errno 30") for line in attempts), attempts  # EROFS
    for target in targets:
        assert not target.exists()


def test_the_environment_is_scrubbed(scene):
    result = run_as_seed(scene, "read_secrets.py", HOSTILE_TARGETS=os.devnull)
    environ = next(line for line in result.tail if line.startswith("environ:"))
    assert "PGOLF_HOSTILE_CANARY" not in environ and str(scene.home) not in environ
    assert f"('HOME', '{scene.work}')" in environ  # the run's HOME is its work dir, never ours


def test_secrets_and_the_parents_environment_are_out_of_reach(scene):
    require(SECRETS, PROCESS_TREE)
    git_config = HARNESS_CHECKOUT / ".git" / "config"
    targets = [scene.home / ".ssh" / "id_rsa", scene.home / ".netrc", git_config]
    result = run_as_seed(scene, "read_secrets.py", HOSTILE_TARGETS=os.pathsep.join(map(str, targets)),
                         HOSTILE_PIDS=f"{os.getpid()},{os.getppid()}")
    assert result.returncode == 0 and result.limit is None, result.tail
    text = "\n".join(result.tail)
    scene.assert_no_canary(text)
    assert f"refused {scene.home / '.ssh' / 'id_rsa'}: errno 2" in text  # ~/.ssh is an empty mount
    assert f"read {scene.home / '.netrc'}: b''" in text  # ~/.netrc is /dev/null
    assert f"refused /proc/{os.getpid()}/environ: errno 2" in text  # our pid is not in its namespace


def test_a_loopback_port_outside_the_sandbox_is_unreachable(scene):
    require(NETWORK)
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.setblocking(False)
        result = run_directly(scene, "dial_loopback.py", HOSTILE_PORT=str(listener.getsockname()[1]))
        with pytest.raises(BlockingIOError):
            listener.accept()  # nobody came
    assert result.ok and result.tail == ["refused: errno 111"]  # ECONNREFUSED: its own loopback, empty


def test_killing_the_parent_leaves_the_harness_running(scene):
    require(PROCESS_TREE)
    scene.work.mkdir(parents=True)
    shutil.copyfile(HOSTILE / "kill_parent.py", scene.work / "kill_parent.py")
    scene.mark()
    # A throwaway harness process runs the sandbox, so that a kill that worked would end it, not pytest.
    harness = (
        "import json, os, sys\n"
        "from harness.reproduce.limits import Limits\n"
        "from harness.reproduce.sandbox import run_sandboxed\n"
        "env = {'HOSTILE_TOKEN': sys.argv[3], 'HOSTILE_PIDS': str(os.getpid())}\n"
        "result = run_sandboxed([sys.executable, 'kill_parent.py'], cwd=sys.argv[2], timeout_s=20, env=env,\n"
        "                       limits=Limits(**json.loads(sys.argv[1])))\n"
        "print('harness survived', json.dumps({'ok': result.ok, 'tail': result.tail}))\n"
    )
    done = subprocess.run([sys.executable, "-c", harness, json.dumps(asdict(LIMITS)), str(scene.work), scene.token],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.split("harness survived ", 1)[1])
    assert report["ok"] and report["tail"][-1] == "still here", report


def test_a_daemon_dies_with_the_run(scene):
    require(PROCESS_TREE)
    result = run_directly(scene, "daemon.py")
    assert result.ok and result.tail == ["daemon started"]
    assert processes_with(scene.token) == []


def test_printing_past_the_output_cap_stops_the_run_and_keeps_the_tail(scene):
    result = run_directly(scene, "flood_output.py")
    assert not result.ok and result.limit == OUTPUT
    assert result.limit_message == "stopped by the output limit: printed more than 1 MiB"
    assert result.tail[-1].startswith("line ") and "flood_output: never stopped" not in result.tail
    assert (scene.work / "console.txt").stat().st_size <= (1 << 20) + 64  # the log stops at the cap


def test_burning_cpu_is_stopped_by_the_cpu_limit(scene):
    require(CPU_TIME)
    started = time.monotonic()
    result = run_directly(scene, "spin_cpu.py", limits=Limits(**{**asdict(LIMITS), "cpu_s": 1}))
    assert result.limit == CPU_TIME and result.returncode == -24  # SIGXCPU
    assert result.limit_message == "stopped by the cpu time limit (1 s per process (RLIMIT_CPU)): killed by SIGXCPU"
    assert time.monotonic() - started < 10


def test_too_many_open_files_is_named(scene):
    require(OPEN_FILES)
    result = run_directly(scene, "open_files.py")
    assert result.limit == OPEN_FILES
    assert result.limit_message.startswith("stopped by the open files limit (256 per process")
    opened = next(line for line in result.tail if line.startswith("refused with"))
    assert int(opened.split()[2]) < 256  # stdin, stdout, stderr and the interpreter's own count too


def zlib_bomb(path: Path, inflated_bytes: int, chunk: int = 16 << 20) -> None:
    """A zlib stream of `inflated_bytes` zeros in a few MB, made in a blink: one chunk compressed after a
    full flush is the same bytes every time, so it is repeated, then closed with the right Adler-32."""
    compressor = zlib.compressobj(9)
    first = compressor.compress(bytes(chunk)) + compressor.flush(zlib.Z_FULL_FLUSH)
    repeated = compressor.compress(bytes(chunk)) + compressor.flush(zlib.Z_FULL_FLUSH)
    adler = ((inflated_bytes % 65521) << 16) | 1  # Adler-32 of zeros: a stays 1, b counts the bytes
    with path.open("wb") as handle:
        handle.write(first)
        for _ in range(inflated_bytes // chunk - 1):
            handle.write(repeated)
        handle.write(b"\x03\x00" + adler.to_bytes(4, "big"))


def test_zlib_bomb_is_sound(tmp_path):
    zlib_bomb(tmp_path / "small.bin", 64 << 20)
    assert zlib.decompress((tmp_path / "small.bin").read_bytes()) == bytes(64 << 20)


def test_a_bomb_in_the_scripts_own_loader_is_stopped_by_the_workers_memory_limit(scene):
    require(MEMORY)
    submission = scene.root / "bomb_submission"
    submission.mkdir()
    shutil.copyfile(HOSTILE / "bomb_loader" / "train_gpt.py", submission / "train_gpt.py")
    artifact = scene.root / "final_model.ptz"
    zlib_bomb(artifact, 4 << 30)
    assert artifact.stat().st_size < 5 << 20
    dataset, tokenizer = make_fake_data(scene.root)
    request = EvalRequest(submission_dir=str(submission), artifact=str(artifact), dataset_dir=str(dataset),
                          tokenizer=str(tokenizer), device="cpu")
    scene.mark()
    outcome = evaluate_submission(request, timeout_s=TIMEOUT_S, limits=LIMITS)
    assert outcome.status == "error"
    assert outcome.reason.startswith("stopped by the memory limit (1 GiB"), outcome.reason
    assert "; the worker reported MemoryError" in outcome.reason
    assert "never stopped" not in "\n".join(outcome.log_tail)
