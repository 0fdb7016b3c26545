"""`harness data ...` on the command line: exit codes 0/1/2 and one-line errors."""

from __future__ import annotations

import json
import sys
import types

import pytest
from data_helpers import TINY_VOCAB, tiny_documents, write_text_files

from harness.cli import main
from harness.data.shards import HEADER_BYTES, read_manifest


def _stderr_lines(capsys) -> list[str]:
    return [line for line in capsys.readouterr().err.splitlines() if line.strip()]


def test_data_without_subcommand_prints_help_and_exits_2(capsys):
    assert main(["data"]) == 2
    assert "build" in capsys.readouterr().out


def test_build_train_tokenizer_then_verify_pass_and_fail(tmp_path, capsys):
    files = write_text_files(tmp_path / "text", tiny_documents(16))
    out, model = tmp_path / "ds", tmp_path / "tok" / "tiny.model"
    assert main(["data", "build", "--text", *files, "--tokenizer", str(model), "--train-tokenizer",
                 "--vocab-size", str(TINY_VOCAB), "--val-docs", "3", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "dataset ds" in printed and "manifest:" in printed
    assert read_manifest(out)["splits"]["val"]["docs"] == 3

    assert main(["data", "verify", str(out), "--json"]) == 0
    verdict = json.loads(capsys.readouterr().out)
    assert verdict["stage"] == "data" and verdict["outcome"] == "pass"

    shard = out / "fineweb_train_000000.bin"
    data = bytearray(shard.read_bytes())
    data[HEADER_BYTES + 10] ^= 1  # the low bit of a token: still inside the vocabulary
    shard.write_bytes(bytes(data))
    assert main(["data", "verify", str(out), "--json"]) == 1
    failed = [f for f in json.loads(capsys.readouterr().out)["findings"] if f["status"] == "fail"]
    assert [f["check"] for f in failed] == ["data.shard.sha256"]


@pytest.mark.parametrize("argv, message", [
    (["data", "verify", "{tmp}/missing"], "{tmp}/missing: not a directory"),
    (["data", "build", "--text", "{tmp}/nope.txt", "--tokenizer", "{tmp}/t.model", "--val-docs", "1", "--out",
      "{tmp}/o"], "{tmp}/nope.txt: text file not found"),
    (["data", "build", "--text", "{tmp}/a.txt", "--tokenizer", "{tmp}/t.model", "--val-docs", "1", "--out",
      "{tmp}/o"], "{tmp}/t.model: tokenizer model not found"),
    (["data", "download", "--variant", "gpt2", "--data-dir", "{tmp}"], "unknown variant 'gpt2'"),
])
def test_user_errors_are_one_line_with_exit_2(tmp_path, capsys, argv, message):
    (tmp_path / "a.txt").write_text("some text", encoding="utf-8")
    argv = [arg.format(tmp=tmp_path) for arg in argv]
    assert main(argv) == 2
    lines = _stderr_lines(capsys)
    assert len(lines) == 1 and lines[0].startswith("error: ") and message.format(tmp=tmp_path) in lines[0]


def test_download_offline_is_one_line_with_exit_2(tmp_path, capsys, monkeypatch):
    def offline(**kwargs):
        raise OSError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setitem(sys.modules, "huggingface_hub", types.SimpleNamespace(hf_hub_download=offline))
    monkeypatch.delenv("MATCHED_FINEWEB_REPO_ID", raising=False)
    monkeypatch.delenv("MATCHED_FINEWEB_REMOTE_ROOT_PREFIX", raising=False)
    assert main(["data", "download", "--train-shards", "1", "--data-dir", str(tmp_path)]) == 2
    assert _stderr_lines(capsys) == [
        "error: cannot download datasets/manifest.json from the Hugging Face dataset willdepueoai/parameter-golf "
        "(OSError: [Errno -3] Temporary failure in name resolution); check the network connection"]


def test_example_command_reuses_a_complete_build(tmp_path, capsys, monkeypatch):
    from harness.data import example as example_corpus

    documents = [(f"doc{i}", text) for i, text in enumerate(tiny_documents(12))]
    monkeypatch.setattr(example_corpus, "example_documents", lambda: documents)
    monkeypatch.setattr(example_corpus, "EXAMPLE_VAL_DOCS", 2)
    assert main(["data", "example", "--data-dir", str(tmp_path)]) == 0
    first = capsys.readouterr()
    assert "collecting the example corpus" in first.err and "example_sp1024" in first.out

    monkeypatch.setattr(example_corpus, "example_documents", lambda: pytest.fail("rebuilt a complete example"))
    assert main(["data", "example", "--data-dir", str(tmp_path)]) == 0
    assert "collecting" not in capsys.readouterr().err
