"""Helpers for the runner's tests: a fake submission (tests/fake_train_gpt.py), fake data, a plan."""

from __future__ import annotations

import shutil
import socket
from pathlib import Path

from harness.reproduce.runner import RunPlan

FAKE_SCRIPT = Path(__file__).with_name("fake_train_gpt.py")
FAKE_CODE_BYTES = len(FAKE_SCRIPT.read_bytes())
# tmp_path -> the socket the fake script reports its runs to, and the seeds received so far.
_COUNTERS: dict[Path, tuple[socket.socket, list[int]]] = {}


def make_fake_submission(root: Path) -> Path:
    """A submission folder holding the fake script, plus outputs of an old run that must not be copied."""
    folder = root / "fake_submission"
    (folder / "logs").mkdir(parents=True)
    shutil.copy(FAKE_SCRIPT, folder / "train_gpt.py")
    (folder / "helper.py").write_text("VALUE = 1\n")
    (folder / "logs" / "old_run.txt").write_text("old\n")
    (folder / "final_model.int8.ptz").write_bytes(b"old artifact")
    (folder / "train_seed7.log").write_text("old log\n")
    return folder


def make_fake_data(root: Path) -> tuple[Path, Path]:
    """A dataset folder in the challenge's layout; the fake script only checks the files exist."""
    dataset = root / "data" / "datasets" / "tiny_sp1024"
    tokenizers = root / "data" / "tokenizers"
    dataset.mkdir(parents=True)
    tokenizers.mkdir(parents=True)
    (dataset / "fineweb_train_000000.bin").write_bytes(b"train")
    (dataset / "fineweb_val_000000.bin").write_bytes(b"val")
    tokenizer = tokenizers / "tiny_1024_bpe.model"
    tokenizer.write_bytes(b"not read by the fake")
    return dataset, tokenizer


def make_plan(tmp_path: Path, **overrides) -> RunPlan:
    dataset, tokenizer = make_fake_data(tmp_path) if not (tmp_path / "data").exists() else (
        tmp_path / "data" / "datasets" / "tiny_sp1024", tmp_path / "data" / "tokenizers" / "tiny_1024_bpe.model")
    code = tmp_path / "fake_submission"
    if not code.exists():
        make_fake_submission(tmp_path)
    settings = dict(code_dir=code, dataset_dir=dataset, tokenizer_path=tokenizer, out_dir=tmp_path / "out",
                    env={"ITERATIONS": "20", "FAKE_COUNTER_SOCKET": counter_socket(tmp_path)},
                    timeout_s=60, vocab_size=1024)
    settings.update(overrides)
    return RunPlan(**settings)


def counter_socket(tmp_path: Path) -> str:
    """Where the fake script reports each run: a Unix datagram socket the test holds. A run may write only
    its own work dir, so a shared file cannot count runs; a socket's datagrams wait in the kernel."""
    path = tmp_path / "counter.sock"
    if tmp_path not in _COUNTERS:
        receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        receiver.bind(str(path))
        receiver.setblocking(False)
        _COUNTERS[tmp_path] = (receiver, [])
    return str(path)


def runs_of(tmp_path: Path) -> list[int]:
    """The seeds the fake script ran for this test, in order."""
    if tmp_path not in _COUNTERS:
        return []
    receiver, seen = _COUNTERS[tmp_path]
    while True:
        try:
            seen.append(int(receiver.recv(64)))
        except BlockingIOError:
            return list(seen)
