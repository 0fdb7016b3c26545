"""The data layer: shard format, malformed shards, manifests, `data build`, `data verify`, the example."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest
import sentencepiece as spm
from data_helpers import TINY_VOCAB, tiny_documents, tiny_tokenizer, write_text_files

from harness import rules
from harness.data import example as example_corpus
from harness.data.location import example_dataset
from harness.data.shards import (HEADER_BYTES, ShardWriter, load_tokens, manifest_tokenizer_path,
                          read_manifest, read_shard, shard_glob, shard_name, shard_paths, write_shard)
from harness.data.build import TOKENIZER_SETTINGS, build_dataset
from harness.data.verify import verify_dataset
from harness.errors import UserError
from harness.findings import FAIL, PASS

# ---- shard format ------------------------------------------------------------------------------------


def test_shard_round_trip_is_the_challenge_format(tmp_path):
    tokens = np.array([1, 0, 65535, 1023, 7], dtype=np.int64)
    path = tmp_path / "fineweb_val_000000.bin"
    assert write_shard(path, tokens) == 5
    raw = path.read_bytes()
    assert len(raw) == 1024 + 2 * 5
    assert struct.unpack("<3i", raw[:12]) == (20240520, 1, 5)
    assert raw[12:1024] == bytes(1012)  # the rest of the 256-int header is zero
    assert struct.unpack("<5H", raw[1024:]) == (1, 0, 65535, 1023, 7)
    read = read_shard(path)
    assert isinstance(read, np.memmap) and read.dtype == np.dtype("<u2")
    assert read.tolist() == [1, 0, 65535, 1023, 7]


@pytest.mark.parametrize("tokens", [[-1, 2], [65536], [1.5, 2.0]])
def test_write_shard_refuses_tokens_outside_uint16(tmp_path, tokens):
    with pytest.raises(ValueError, match=r"\[0, 65535\]"):
        write_shard(tmp_path / "x.bin", tokens)


def _header(magic=rules.SHARD_MAGIC, version=rules.SHARD_VERSION, count=4) -> bytes:
    return struct.pack("<3i", magic, version, count) + bytes(HEADER_BYTES - 12)


MALFORMED = {
    "short file": (bytes(100), "only 100 bytes, shorter than the 1024-byte shard header"),
    "header cut": (_header()[:1023], "only 1023 bytes"),
    "header only": (_header(count=4), "declares 4 tokens but the file holds 0: truncated"),
    "truncated": (_header(count=4) + bytes(6), "declares 4 tokens but the file holds 3: truncated"),
    "extra tokens": (_header(count=4) + bytes(10), "holds 5: extra bytes after the declared tokens"),
    "odd size": (_header(count=4) + bytes(7), "7 bytes after the header, an odd number"),
    "wrong magic": (_header(magic=20240521) + bytes(8), "magic number 20240521, expected 20240520"),
    "wrong version": (_header(version=2) + bytes(8), "shard format version 2, expected 1"),
    "zero tokens": (_header(count=0), "declares 0 tokens: an empty or corrupt shard"),
    "negative count": (_header(count=-3) + bytes(8), "declares -3 tokens"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_shard_is_refused_naming_the_file(tmp_path, case):
    content, expected = MALFORMED[case]
    path = tmp_path / "fineweb_train_000003.bin"
    path.write_bytes(content)
    with pytest.raises(UserError) as raised:
        read_shard(path)
    assert str(raised.value).startswith(f"{path}: ")
    assert expected in str(raised.value)


def test_missing_shard_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="shard not found"):
        read_shard(tmp_path / "fineweb_val_000000.bin")


def test_load_tokens_concatenates_in_name_order(tmp_path):
    write_shard(tmp_path / shard_name("val", 1), [4, 5])  # written first, read second
    write_shard(tmp_path / shard_name("val", 0), [1, 2, 3])
    write_shard(tmp_path / shard_name("train", 0), [9])
    assert load_tokens(tmp_path, "val").tolist() == [1, 2, 3, 4, 5]
    assert isinstance(load_tokens(tmp_path, "train"), np.memmap)  # one shard: no copy
    assert [p.name for p in shard_paths(tmp_path, "val")] == ["fineweb_val_000000.bin", "fineweb_val_000001.bin"]
    assert shard_glob(tmp_path, "train") == f"{tmp_path}/fineweb_train_*.bin"


def test_load_tokens_with_no_shards_names_the_directory(tmp_path):
    with pytest.raises(UserError, match=r"no val shards \(fineweb_val_\*\.bin\)") as raised:
        load_tokens(tmp_path, "val")
    assert str(tmp_path) in str(raised.value)


def test_unknown_split_is_a_bug_not_a_user_error(tmp_path):
    with pytest.raises(ValueError, match="unknown split"):
        shard_paths(tmp_path, "test")


def test_shard_writer_cuts_by_size_and_lets_documents_straddle(tmp_path):
    writer = ShardWriter(tmp_path, "train", shard_tokens=4)
    writer.add(np.array([1, 10, 11], dtype=np.uint16))
    writer.add(np.array([1, 12, 13, 14, 15, 16], dtype=np.uint16))
    paths = writer.close()
    assert [p.name for p in paths] == [shard_name("train", i) for i in range(3)]
    assert [read_shard(p).tolist() for p in paths] == [[1, 10, 11, 1], [12, 13, 14, 15], [16]]


# ---- manifests ---------------------------------------------------------------------------------------


def test_read_manifest_errors_are_one_sentence_naming_the_file(tmp_path):
    with pytest.raises(UserError, match="no manifest.json"):
        read_manifest(tmp_path)
    (tmp_path / "manifest.json").write_text("{\n  oops", encoding="utf-8")
    with pytest.raises(UserError, match=r"manifest.json: not valid JSON \(line 2"):
        read_manifest(tmp_path)
    (tmp_path / "manifest.json").write_text(json.dumps({"manifest_version": 1}), encoding="utf-8")
    with pytest.raises(UserError, match=r"not a dataset manifest: \$: 'name' is a required property \(and 6 more\)"):
        read_manifest(tmp_path)


# ---- building ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    return tiny_tokenizer(tmp_path_factory.mktemp("tok") / "tiny.model")


@pytest.fixture
def built(tmp_path, tokenizer):
    """A dataset of 24 pydoc topics: 5 validation documents, small shards."""
    files = write_text_files(tmp_path / "text", tiny_documents())
    out = tmp_path / "datasets" / "tiny"
    manifest = build_dataset(text_files=files, tokenizer=tokenizer, out=out, val_docs=5, shard_tokens=20_000)
    return out, manifest


def _documents_in(tokens: np.ndarray) -> list[list[int]]:
    starts = np.flatnonzero(tokens == rules.BOS_ID).tolist() + [len(tokens)]
    assert starts[0] == 0
    return [tokens[a + 1:b].tolist() for a, b in zip(starts, starts[1:])]


def test_build_from_text_files_tokenises_each_file_after_bos(built, tokenizer):
    out, manifest = built
    processor = spm.SentencePieceProcessor(model_file=str(tokenizer))
    expected = [processor.encode(text) for text in tiny_documents()]
    assert _documents_in(load_tokens(out, "val")) == expected[:5]
    assert _documents_in(load_tokens(out, "train")) == expected[5:]
    assert manifest["splits"]["val"]["docs"] == 5 and manifest["splits"]["train"]["docs"] == 19
    assert manifest["splits"]["train"]["tokens"] == sum(len(ids) + 1 for ids in expected[5:])
    assert manifest["splits"]["train"]["shards"] == len(shard_paths(out, "train")) >= 2  # cut at 20,000 tokens
    assert manifest_tokenizer_path(out, manifest).resolve() == tokenizer.resolve()
    assert sorted(p.name for p in out.parent.iterdir()) == ["tiny"]  # no staging directory left behind


def test_build_from_jsonl_matches_build_from_text(tmp_path, built, tokenizer):
    jsonl = tmp_path / "docs.jsonl"
    lines = [json.dumps({"text": text, "id": i}) for i, text in enumerate(tiny_documents())]
    jsonl.write_text("\n".join(lines[:3]) + "\n\n" + "\n".join(lines[3:]) + "\n", encoding="utf-8")  # a blank line
    out = tmp_path / "from_jsonl"
    build_dataset(jsonl_files=[str(jsonl)], tokenizer=tokenizer, out=out, val_docs=5, shard_tokens=20_000)
    for split in ("val", "train"):
        assert load_tokens(out, split).tolist() == load_tokens(built[0], split).tolist()


@pytest.mark.parametrize("line, message", [
    ("{not json", r"docs.jsonl:2: not a JSON object"),
    ('{"txt": "x"}', r'docs.jsonl:2: expected a JSON object with a string "text"'),
    ('["text"]', r'docs.jsonl:2: expected a JSON object with a string "text"'),
])
def test_bad_jsonl_line_is_named_with_its_line_number(tmp_path, tokenizer, line, message):
    jsonl = tmp_path / "docs.jsonl"
    jsonl.write_text('{"text": "fine"}\n' + line + "\n", encoding="utf-8")
    with pytest.raises(UserError, match=message):
        build_dataset(jsonl_files=[str(jsonl)], tokenizer=tokenizer, out=tmp_path / "out", val_docs=1)
    assert not (tmp_path / "out").exists()


def test_too_few_documents_for_validation_leaves_nothing_behind(tmp_path, tokenizer):
    files = write_text_files(tmp_path / "text", tiny_documents(3))
    with pytest.raises(UserError, match="only 3 documents, fewer than the 5 asked for validation"):
        build_dataset(text_files=files, tokenizer=tokenizer, out=tmp_path / "out", val_docs=5)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["text"]


def test_existing_dataset_is_replaced_only_with_force(tmp_path, built, tokenizer):
    out, _ = built
    files = write_text_files(tmp_path / "more", tiny_documents(8))
    with pytest.raises(UserError, match="already holds files; pass --force"):
        build_dataset(text_files=files, tokenizer=tokenizer, out=out, val_docs=2)
    manifest = build_dataset(text_files=files, tokenizer=tokenizer, out=out, val_docs=2, force=True)
    assert manifest["splits"]["train"]["docs"] == 6
    (out / "notes.txt").write_text("mine", encoding="utf-8")
    with pytest.raises(UserError, match=r"holds files that are not part of a dataset \(notes.txt\)"):
        build_dataset(text_files=files, tokenizer=tokenizer, out=out, val_docs=2, force=True)


def test_train_tokenizer_uses_only_the_training_documents(tmp_path):
    # The validation document holds a word no training document has; a tokenizer trained on the
    # training split cannot have learnt it as one piece.
    secret = "Zyxwvutsrq"
    docs = [f"{secret} " * 50] + tiny_documents(12)
    files = write_text_files(tmp_path / "text", docs)
    model = tmp_path / "trained.model"
    manifest = build_dataset(text_files=files, tokenizer=model, out=tmp_path / "ds", val_docs=1, train=True,
                             vocab_size=TINY_VOCAB)
    processor = spm.SentencePieceProcessor(model_file=str(model))
    assert len(processor.encode(secret)) > 3
    assert manifest["build"]["tokenizer_trained"] is True
    with pytest.raises(UserError, match="tokenizer already exists; pass --force"):
        build_dataset(text_files=files, tokenizer=model, out=tmp_path / "ds2", val_docs=1, train=True)


def _spec_fields(model_bytes: bytes) -> dict[int, dict[int, object]]:
    """Fields of a ModelProto's TrainerSpec (2) and NormalizerSpec (3), decoded from the protobuf wire
    format (the protobuf package is not a dependency): {message: {field number: value}}."""
    def fields(data: bytes):
        i = 0
        while i < len(data):
            key, i = _varint(data, i)
            number, wire = key >> 3, key & 7
            if wire == 0:
                value, i = _varint(data, i)
            elif wire == 5:
                value, i = round(struct.unpack("<f", data[i:i + 4])[0], 6), i + 4
            elif wire == 1:
                value, i = data[i:i + 8], i + 8
            else:
                length, i = _varint(data, i)
                value, i = data[i:i + length], i + length
            yield number, value

    specs = {number: dict(fields(value)) for number, value in fields(model_bytes) if number in (2, 3)}
    specs[2].pop(2, None)  # model_prefix: where the model was written
    specs[3].pop(2, None)  # precompiled_charsmap: compared separately
    return specs


def _varint(data: bytes, i: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = data[i]
        i += 1
        result |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return result, i


def test_trained_tokenizer_has_the_challenge_tokenizers_settings(tmp_path, real_tokenizer):
    ours = tiny_tokenizer(tmp_path / "ours.model")
    ours_spec, real_spec = _spec_fields(ours.read_bytes()), _spec_fields(real_tokenizer.read_bytes())
    ours_spec[2][4] = real_spec[2][4]  # vocab_size: ours is tiny on purpose
    assert ours_spec == real_spec
    # What the fields say, for the record: BPE, coverage 0.999, split digits, no byte fallback, no hard
    # vocabulary limit, unk 3 / bos 1 / eos 2 / pad 0, nmt_nfkc without a dummy prefix.
    assert real_spec[2] == {3: 2, 4: 1024, 10: 0.999, 25: 1, 33: 0, 35: 0, 40: 3, 41: 1, 42: 2, 43: 0}
    assert real_spec[3] == {1: b"nmt_nfkc", 3: 0}
    assert TOKENIZER_SETTINGS["byte_fallback"] is False


# ---- verify ------------------------------------------------------------------------------------------


def _statuses(verdict) -> dict[str, list[str]]:
    result: dict[str, list[str]] = {}
    for item in verdict.findings:
        result.setdefault(item.check, []).append(item.status)
    return result


def test_verify_passes_a_fresh_build(built):
    verdict = verify_dataset(built[0])
    assert verdict.outcome == PASS
    assert set(_statuses(verdict)) == {"data.manifest", "data.shards.listed", "data.shards", "data.split.tokens",
                                       "data.split.docs", "data.tokenizer.sha256", "data.tokenizer.vocab"}
    assert verdict.measurements["val_docs"] == 5 and verdict.measurements["train_docs"] == 19


def _flip_byte(path, offset):
    data = bytearray(path.read_bytes())
    data[offset] ^= 1
    path.write_bytes(bytes(data))


def test_verify_fails_a_flipped_byte_as_a_sha256_mismatch(built):
    out, _ = built
    _flip_byte(out / shard_name("train", 1), HEADER_BYTES + 101)
    verdict = verify_dataset(out)
    failed = [f for f in verdict.findings if f.status == FAIL]
    assert [f.check for f in failed] == ["data.shard.sha256"]
    assert failed[0].evidence[0].file.endswith("fineweb_train_000001.bin")


def test_verify_fails_a_truncated_shard_on_its_size(built):
    out, _ = built
    path = out / shard_name("val", 0)
    path.write_bytes(path.read_bytes()[:-2])
    verdict = verify_dataset(out)
    failed = [f for f in verdict.findings if f.status == FAIL]
    assert [f.check for f in failed] == ["data.shard.header"]
    assert "header declares" in failed[0].message and "truncated" in failed[0].message
    assert _statuses(verdict)["data.split.tokens"] == ["skip", "pass"]


def test_verify_fails_missing_unlisted_and_changed_files(built, tmp_path):
    out, _ = built
    shard_paths(out, "train")[-1].unlink()
    write_shard(out / shard_name("val", 7), [1, 2, 3])
    verdict = verify_dataset(out, tokenizer=tiny_tokenizer(tmp_path / "other.model", character_coverage=1.0))
    messages = [f.message for f in verdict.findings if f.status == FAIL]
    assert any("listed in the manifest but missing: fineweb_train_" in m for m in messages)
    assert any("present but not listed in the manifest (it would be read as data): fineweb_val_000007.bin" in m
               for m in messages)
    assert any("not the one the shards were made with" in m for m in messages)


def test_verify_fails_when_documents_or_ids_disagree(built):
    out, _ = built
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["splits"]["val"]["docs"] = 6
    manifest["tokenizer"]["vocab_size"] = 100
    (out / "manifest.json").write_text(json.dumps(manifest))
    messages = {f.check: f.message for f in verify_dataset(out).findings if f.status == FAIL}
    assert messages["data.split.docs"] == "val: 5 documents (BOS tokens) in the shards, the manifest says 6"
    assert messages["data.tokenizer.vocab"].endswith("outside the vocabulary of 100")
    assert messages["data.tokenizer.model"] == f"the model's vocabulary is {TINY_VOCAB}, the manifest says 100"


def test_verify_without_manifest_still_checks_headers(tmp_path):
    write_shard(tmp_path / shard_name("val", 0), [1, 2])
    (tmp_path / shard_name("train", 0)).write_bytes(b"garbage")
    verdict = verify_dataset(tmp_path)
    assert _statuses(verdict) == {"data.shard.header": ["fail", "pass"], "data.manifest": ["fail"]}


def test_verify_fails_a_dataset_without_validation_shards(tmp_path):
    write_shard(tmp_path / shard_name("train", 0), [1, 2])
    failed = [f for f in verify_dataset(tmp_path).findings if f.status == FAIL]
    assert [(f.check, f.message) for f in failed][0] == (
        "data.split.present", "no validation shards (fineweb_val_*.bin): there is nothing to score val_bpb on")


def test_verify_refuses_a_path_that_is_not_a_directory(tmp_path):
    with pytest.raises(UserError, match="not a directory"):
        verify_dataset(tmp_path / "nope")


# ---- the bundled example -----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def example_data_dir(tmp_path_factory):
    """One real example build per test session (about 5 s on 2 cores)."""
    data_dir = tmp_path_factory.mktemp("example_data")
    example_dataset(data_dir)
    return data_dir


@pytest.mark.slow
def test_example_dataset_is_big_enough_verified_and_cached(example_data_dir):
    data_dir = example_data_dir
    built = {p: p.stat().st_mtime_ns for p in data_dir.rglob("*") if p.is_file()}
    example = example_dataset(data_dir)
    # cached: the manifest is checked, nothing is rewritten
    assert {p: p.stat().st_mtime_ns for p in data_dir.rglob("*") if p.is_file()} == built
    assert example.dataset_dir == data_dir / "datasets" / "example_sp1024"
    assert example.tokenizer_path == data_dir / "tokenizers" / "example_1024_bpe.model"
    manifest = read_manifest(example.dataset_dir)
    assert manifest["splits"]["val"]["docs"] == example_corpus.EXAMPLE_VAL_DOCS == 200
    assert manifest["splits"]["val"]["tokens"] >= 100_000
    assert manifest["splits"]["train"]["tokens"] >= 1_000_000
    assert manifest["tokenizer"]["vocab_size"] == rules.BASELINE_VOCAB_SIZE
    assert manifest["tokenizer"]["path"] == "../../tokenizers/example_1024_bpe.model"
    assert verify_dataset(example.dataset_dir).outcome == PASS


@pytest.mark.slow
def test_example_paths_are_absolute_from_a_relative_data_dir(example_data_dir, monkeypatch):
    """Scripts that receive these paths run in other working directories (the runner, the tests)."""
    monkeypatch.chdir(example_data_dir.parent)
    example = example_dataset(example_data_dir.name)
    assert example.dataset_dir.is_absolute() and example.tokenizer_path.is_absolute()
    assert example.tokenizer_path == example_data_dir / "tokenizers" / "example_1024_bpe.model"


@pytest.mark.slow
def test_example_build_is_deterministic(example_data_dir, tmp_path):
    first = read_manifest(example_data_dir / "datasets" / "example_sp1024")
    again = read_manifest(example_dataset(tmp_path, rebuild=True).dataset_dir)
    assert again == first  # same shards (sha256), same tokenizer (sha256), same recipe


def test_example_build_is_atomic_and_rebuilds_what_is_incomplete(tmp_path, monkeypatch):
    documents = [(f"doc{i}", text) for i, text in enumerate(tiny_documents(12))]
    monkeypatch.setattr(example_corpus, "example_documents", lambda: documents)
    monkeypatch.setattr(example_corpus, "EXAMPLE_VAL_DOCS", 2)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(example_corpus, "write_dataset", interrupted)
        with pytest.raises(KeyboardInterrupt):
            example_dataset(tmp_path)
    assert not (tmp_path / "datasets").exists()
    assert [p.name for p in tmp_path.iterdir()] == []  # the staging directory is gone too

    example = example_dataset(tmp_path)
    assert read_manifest(example.dataset_dir)["splits"]["val"]["docs"] == 2
    shard_paths(example.dataset_dir, "train")[0].unlink()  # a damaged copy is not "complete"
    assert not example_corpus.is_complete(example)
    example_dataset(tmp_path)
    assert example_corpus.is_complete(example)


def test_a_submission_with_its_own_tokenizer_gets_the_example_corpus_in_it(tmp_path, monkeypatch):
    """A record that brings tokenizers/*.model runs on the example corpus tokenised with that model (its own
    folder, named after the model and its sha256, cached), unless --data or --tokenizer is given."""
    from harness.judge.evidence import Hardware
    from harness.judge.runs import setup_finding
    from harness.pipeline import data_for
    from harness.submission.folder import load_submission

    documents = [(f"doc{i}", text) for i, text in enumerate(tiny_documents(12))]
    monkeypatch.setattr(example_corpus, "example_documents", lambda: documents)
    monkeypatch.setattr(example_corpus, "EXAMPLE_VAL_DOCS", 2)
    monkeypatch.setenv("PGOLF_DATA_DIR", str(tmp_path / "data"))
    folder = tmp_path / "record"
    (folder / "tokenizers").mkdir(parents=True)
    (folder / rules.COUNTED_CODE_FILE).write_text("print('hi')\n", encoding="utf-8")
    own = tiny_tokenizer(folder / "tokenizers" / "own_bpe.model")

    dataset_dir, tokenizer, used = data_for(load_submission(folder), None, None)
    assert used == own and dataset_dir.name.startswith("example_own_bpe_") and tokenizer.read_bytes() == own.read_bytes()
    manifest = read_manifest(dataset_dir)
    assert manifest["tokenizer"]["vocab_size"] == TINY_VOCAB and manifest["build"]["tokenizer_source"] == "own_bpe.model"
    assert manifest["build"]["tokenizer_trained"] is False and verify_dataset(dataset_dir).outcome == PASS
    built = {p: p.stat().st_mtime_ns for p in (tmp_path / "data").rglob("*") if p.is_file()}
    assert data_for(load_submission(folder), None, None)[0] == dataset_dir  # cached
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "data").rglob("*") if p.is_file()} == built
    message = setup_finding(Hardware("CPU", 1, False), dataset_dir.name, tokenizer.name, {}, False, None,
                            "tokenizers/own_bpe.model").message
    assert "the folder's own tokenizers/own_bpe.model: the example corpus tokenised with it" in message

    # Given a tokenizer, the folder's own is not used (the example as it is, with that tokenizer).
    assert data_for(load_submission(folder), None, str(tokenizer))[2] is None
    tiny_tokenizer(folder / "second.model")
    with pytest.raises(UserError, match="holds 2 tokenizer models .*give --tokenizer MODEL"):
        data_for(load_submission(folder), None, None)
