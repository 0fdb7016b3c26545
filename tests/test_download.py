"""`harness data download` around the network call: a fake repository stands in for the Hugging Face Hub."""

from __future__ import annotations

import json
import shutil
import sys
import types
from pathlib import Path

import pytest
from data_helpers import tiny_tokenizer

from harness.data import download as dl
from harness.data.shards import HEADER_BYTES, file_sha256, read_manifest, write_shard
from harness.data.verify import verify_dataset
from harness.errors import UserError
from harness.findings import PASS

NAME = "fineweb10B_sp1024"


class FakeHub:
    """A dataset repository laid out like the challenge's (root `datasets/`), fetched by `fetch`."""

    def __init__(self, root: Path, tokenizer: Path, train_files: int = 3, extra: dict | None = None):
        self.root, self.calls = root, []
        base = root / "datasets"
        shards = base / "datasets" / NAME
        shards.mkdir(parents=True)
        write_shard(shards / "fineweb_val_000000.bin", [1, 5, 6, 7, 1, 8])
        for i in range(train_files):
            write_shard(shards / f"fineweb_train_{i:06d}.bin", [1, 10 + i, 11 + i, 1, 12])
        (base / "tokenizers").mkdir()
        (base / "tokenizers" / "fineweb_1024_bpe.model").write_bytes(tokenizer.read_bytes())
        (base / "docs_selected.jsonl").write_text('{"text": "a"}\n')
        (base / "docs_selected.source_manifest.json").write_text('{"docs_sha256": "x"}\n')
        self.manifest = {
            "datasets": [{"name": NAME, "tokenizer_name": "sp_bpe_1024", "vocab_size": 320, "bos_id": 1,
                          "stats": {"files_val": 1, "files_train": train_files, "docs_val": 2,
                                    "docs_train": 2 * train_files}, **(extra or {})}],
            "tokenizers": [{"name": "sp_bpe_1024", "vocab_size": 320, "bos_id": 1, "eos_id": 2,
                            "model_path": "tokenizers/fineweb_1024_bpe.model"}],
        }
        self.write_manifest()

    def write_manifest(self) -> None:
        (self.root / "datasets" / "manifest.json").write_text(json.dumps(self.manifest))

    def fetch(self, repo_id: str, remote_path: str, staging_dir: Path) -> Path:
        """Like hf_fetch: a copy of the file under `staging_dir`, or a UserError."""
        self.calls.append((repo_id, remote_path))
        source = self.root / remote_path
        if not source.is_file():
            raise UserError(f"cannot download {remote_path} from the Hugging Face dataset {repo_id} (404)")
        copy = staging_dir / remote_path
        copy.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, copy)
        return copy


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    return tiny_tokenizer(tmp_path_factory.mktemp("tok") / "tiny.model")


@pytest.fixture
def hub(tmp_path, tokenizer, monkeypatch):
    monkeypatch.delenv(dl.REPO_ENV, raising=False)
    monkeypatch.delenv(dl.REMOTE_ROOT_ENV, raising=False)
    return FakeHub(tmp_path / "remote", tokenizer)


def test_download_places_files_like_the_challenge_and_writes_a_verifiable_manifest(tmp_path, hub):
    data = tmp_path / "data"
    report = dl.download("sp1024", 2, data, fetch=hub.fetch)
    assert [path for _, path in hub.calls] == [
        "datasets/manifest.json",
        f"datasets/datasets/{NAME}/fineweb_val_000000.bin",
        f"datasets/datasets/{NAME}/fineweb_train_000000.bin",
        f"datasets/datasets/{NAME}/fineweb_train_000001.bin",
        "datasets/tokenizers/fineweb_1024_bpe.model",
    ]
    assert {repo for repo, _ in hub.calls} == {"willdepueoai/parameter-golf"}
    assert (data / "manifest.json").is_file()  # the published manifest, where the challenge's script puts it
    assert not (data / ".download").exists()  # the staging directory is cleaned up
    assert sorted(p.name for p in (data / "datasets" / NAME).iterdir()) == [
        "fineweb_train_000000.bin", "fineweb_train_000001.bin", "fineweb_val_000000.bin", "manifest.json"]
    assert report.tokenizer_path == data / "tokenizers" / "fineweb_1024_bpe.model"
    manifest = read_manifest(report.dataset_dir)
    assert manifest["splits"]["val"] == {"shards": 1, "tokens": 6, "docs": 2}
    assert manifest["splits"]["train"] == {"shards": 2, "tokens": 10, "docs": None}  # a prefix: docs unknown
    assert manifest["tokenizer"]["path"] == "../../tokenizers/fineweb_1024_bpe.model"
    assert verify_dataset(report.dataset_dir).outcome == PASS


def test_resume_fetches_nothing_that_is_present_and_sound(tmp_path, hub):
    data = tmp_path / "data"
    dl.download("sp1024", 2, data, fetch=hub.fetch)
    hub.calls.clear()
    report = dl.download("sp1024", 3, data, fetch=hub.fetch)
    assert [path for _, path in hub.calls] == [f"datasets/datasets/{NAME}/fineweb_train_000002.bin"]
    assert len(report.kept) == 4 and report.fetched == [f"datasets/datasets/{NAME}/fineweb_train_000002.bin"]
    assert read_manifest(report.dataset_dir)["splits"]["train"]["docs"] == 6  # all shards now: docs known


def test_resume_fetches_again_a_truncated_or_changed_shard(tmp_path, hub):
    data = tmp_path / "data"
    dl.download("sp1024", 2, data, fetch=hub.fetch)
    shards = data / "datasets" / NAME
    truncated = shards / "fineweb_train_000000.bin"
    truncated.write_bytes(truncated.read_bytes()[:-2])
    flipped = shards / "fineweb_val_000000.bin"
    content = bytearray(flipped.read_bytes())
    content[HEADER_BYTES + 2] ^= 1  # still a sound header: only our earlier manifest's sha256 catches it
    flipped.write_bytes(bytes(content))
    hub.calls.clear()
    dl.download("sp1024", 2, data, fetch=hub.fetch)
    assert sorted(path for _, path in hub.calls) == [f"datasets/datasets/{NAME}/fineweb_train_000000.bin",
                                                     f"datasets/datasets/{NAME}/fineweb_val_000000.bin"]
    assert verify_dataset(shards).outcome == PASS


def test_published_sha256_is_checked_before_a_file_is_placed(tmp_path, tokenizer, monkeypatch):
    monkeypatch.delenv(dl.REMOTE_ROOT_ENV, raising=False)
    val = "fineweb_val_000000.bin"
    hub = FakeHub(tmp_path / "remote", tokenizer, extra={"sha256": {val: "0" * 64}})
    with pytest.raises(UserError, match=rf"the downloaded datasets/datasets/{NAME}/{val} is not right .*sha256 "
                                        "differs from the expected 0000"):
        dl.download("sp1024", 1, tmp_path / "data", fetch=hub.fetch)
    assert not list((tmp_path / "data" / "datasets" / NAME).iterdir())  # neither the file nor a .partial

    good = file_sha256(hub.root / "datasets" / "datasets" / NAME / val)
    hub.manifest["datasets"][0]["sha256"] = {val: good}
    hub.write_manifest()
    report = dl.download("sp1024", 1, tmp_path / "data", fetch=hub.fetch, refresh_manifest=True)
    assert read_manifest(report.dataset_dir)["shards"][0]["sha256"] == good


def test_missing_manifest_entries_and_bad_requests_are_user_errors(tmp_path, hub):
    data = tmp_path / "data"
    with pytest.raises(UserError, match="sp1024 has 3 training shards on willdepueoai/parameter-golf; 4 were"):
        dl.download("sp1024", 4, data, fetch=hub.fetch)
    with pytest.raises(UserError, match="dataset fineweb10B_sp4096 is not in the published manifest"):
        dl.download("sp4096", 1, data, fetch=hub.fetch)
    with pytest.raises(UserError, match="unknown variant 'gpt2'"):
        dl.download("gpt2", 1, data, fetch=hub.fetch)
    (hub.root / "datasets" / "manifest.json").unlink()
    with pytest.raises(UserError, match="cannot download datasets/manifest.json"):
        dl.download("sp1024", 1, data, fetch=hub.fetch, refresh_manifest=True)


def test_environment_overrides_repository_and_root(tmp_path, tokenizer, monkeypatch):
    hub = FakeHub(tmp_path / "remote", tokenizer)
    (hub.root / "datasets").rename(hub.root / "export_50B")
    monkeypatch.setenv(dl.REPO_ENV, "someone/mirror")
    monkeypatch.setenv(dl.REMOTE_ROOT_ENV, "export_50B")
    report = dl.download("sp1024", 1, tmp_path / "data", fetch=hub.fetch, with_docs=True)
    assert hub.calls[0] == ("someone/mirror", "export_50B/manifest.json")
    assert ("someone/mirror", f"export_50B/datasets/{NAME}/fineweb_train_000000.bin") in hub.calls
    assert (tmp_path / "data" / "docs_selected.jsonl").is_file()
    assert (tmp_path / "data" / "docs_selected.source_manifest.json").is_file()
    assert report.tokenizer_path == tmp_path / "data" / "tokenizers" / "fineweb_1024_bpe.model"


def test_hf_fetch_without_huggingface_hub_says_how_to_install_it(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)  # makes the import fail
    with pytest.raises(UserError) as raised:
        dl.hf_fetch("willdepueoai/parameter-golf", "datasets/manifest.json", tmp_path)
    assert str(raised.value) == "downloading needs huggingface_hub: pip install huggingface_hub"


def test_hf_fetch_offline_is_one_line_naming_the_file(monkeypatch, tmp_path):
    def offline(**kwargs):
        assert kwargs == {"repo_id": "r/x", "filename": "fineweb_val_000000.bin",
                          "subfolder": f"datasets/datasets/{NAME}", "repo_type": "dataset", "local_dir": tmp_path}
        raise ConnectionError("Failed to resolve 'huggingface.co'\n(a long traceback-ish tail)")

    monkeypatch.setitem(sys.modules, "huggingface_hub", types.SimpleNamespace(hf_hub_download=offline))
    with pytest.raises(UserError) as raised:
        dl.hf_fetch("r/x", f"datasets/datasets/{NAME}/fineweb_val_000000.bin", tmp_path)
    assert str(raised.value) == (f"cannot download datasets/datasets/{NAME}/fineweb_val_000000.bin from the Hugging "
                                 "Face dataset r/x (ConnectionError: Failed to resolve 'huggingface.co'); check the "
                                 "network connection")
