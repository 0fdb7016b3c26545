"""The submission folder model: file kinds, refused files, metadata parsing, measurements."""

from __future__ import annotations

import os
import subprocess

import pytest

from harness import rules
from harness.submission import folder as submission_module
from harness.errors import UserError
from harness.submission.folder import (CODE, LOG, METADATA, OTHER, README, REQUIREMENTS, SNIFF_BYTES, load_submission,
                                parse_metadata)
from submission_folders import GOOD_CODE, GOOD_LOG, GOOD_README, write_submission

def kinds(submission) -> dict[str, str]:
    return {f.relpath: f.kind for f in submission.files}


def refusals(submission) -> dict[str, str]:
    return {f.relpath: f.refused for f in submission.files if f.refused}


# -- kinds ----------------------------------------------------------------------------------------

def test_every_kind_is_recognised(tmp_path):
    folder = write_submission(tmp_path / "sub", extra={
        "requirements.txt": "sentencepiece\n",
        "kernels/attn.cu": "__global__ void k() {}\n",
        "kernels/fused.triton": "# triton\n",
        "helper.sh": "torchrun train_gpt.py\n",
        "launch": "#!/bin/sh\necho hi\n",  # no extension, shebang: code
        "VERSION": "1.0\n",  # no extension, no shebang: other
        "logs/run1.txt": "anything at all\n",  # in a log* folder: log
        "train_seed42.txt": "started\n",  # name says train/seed: log
        "results.txt": "step:100 val_bpb:1.30\n",  # content looks like a training log
        "notes.txt": "thoughts\n",
        "RESULTS.md": "# more\n",
        "tokenizer.model": b"\x00\x01binary",
        "ttt/seed_0_result.json": "{}",
        "sub/submission.json": "{}",  # only the top level holds metadata
        "sub/README.md": "nested\n",
        ".git/config": "[core]\n",
        "__pycache__/train_gpt.cpython-311.pyc": b"\x00",
    })
    assert kinds(load_submission(folder)) == {
        "README.md": README, "submission.json": METADATA, "train.log": LOG, "train_gpt.py": CODE,
        "requirements.txt": REQUIREMENTS, "kernels/attn.cu": CODE, "kernels/fused.triton": CODE, "helper.sh": CODE,
        "launch": CODE, "VERSION": OTHER, "logs/run1.txt": LOG, "train_seed42.txt": LOG, "results.txt": LOG,
        "notes.txt": OTHER, "RESULTS.md": OTHER, "tokenizer.model": OTHER, "ttt/seed_0_result.json": OTHER,
        "sub/submission.json": OTHER, "sub/README.md": OTHER,
    }


def test_files_are_listed_in_path_order_with_sizes(tmp_path):
    sub = load_submission(write_submission(tmp_path / "s"))
    assert [(f.relpath, f.size) for f in sub.files] == [
        ("README.md", len(GOOD_README)), ("submission.json", sub.file("submission.json").stat().st_size),
        ("train.log", len(GOOD_LOG)), ("train_gpt.py", len(GOOD_CODE)),
    ]


def test_binary_log_keeps_its_kind_and_is_marked(tmp_path):
    sub = load_submission(write_submission(tmp_path / "s", log=os.urandom(4096).replace(b"\0", b"\1") + b"\0"))
    (log,) = sub.files_of(LOG)
    assert (log.relpath, log.binary) == ("train.log", True)


def test_multibyte_character_cut_by_the_sniff_window_is_still_text(tmp_path):
    text = ("é" * SNIFF_BYTES).encode()  # 2 bytes each: the window ends inside a character or not, both text
    sub = load_submission(write_submission(tmp_path / "s", log=b"x" + text))
    assert sub.files_of(LOG)[0].binary is False


def test_invalid_utf8_log_is_binary(tmp_path):
    sub = load_submission(write_submission(tmp_path / "s", log=b"step:1 val_bpb:\xff\xfe 1.2\n"))
    assert sub.files_of(LOG)[0].binary is True


# -- refused files --------------------------------------------------------------------------------

def test_symlink_outside_is_refused_and_not_listed_as_usable(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("token\n")
    folder = write_submission(tmp_path / "s")
    (folder / "train_seed1.log").symlink_to(secret)
    sub = load_submission(folder)
    assert refusals(sub) == {"train_seed1.log": f"symlink pointing outside the folder (to {secret})"}
    assert [f.relpath for f in sub.files_of(LOG)] == ["train.log"]
    with pytest.raises(UserError, match="not read: symlink pointing outside"):
        sub.read_bytes("train_seed1.log")


def test_symlinks_inside_broken_and_to_folders(tmp_path):
    outside = tmp_path / "outside_dir"
    outside.mkdir()
    (outside / "x.py").write_text("print(1)\n")
    folder = write_submission(tmp_path / "s", extra={"data/notes.txt": "hello\n"})
    (folder / "link_inside.txt").symlink_to(folder / "data" / "notes.txt")
    (folder / "broken.log").symlink_to(folder / "gone.log")
    (folder / "datalink").symlink_to(folder / "data")
    (folder / "outlink").symlink_to(outside)
    sub = load_submission(folder)
    assert refusals(sub) == {
        "broken.log": "broken symlink",
        "datalink": "symlink to a folder (not followed; its files are listed under their real path)",
        "outlink": f"symlink pointing outside the folder (to {outside})",
    }
    assert sub.entry("link_inside.txt").size == 6  # the target's size: an inside link is read like a file
    assert "outlink/x.py" not in kinds(sub)


def test_oversize_file_is_refused_without_reading(tmp_path):
    folder = write_submission(tmp_path / "s")
    big = folder / "weights.bin"
    with open(big, "wb") as handle:
        handle.truncate(rules.MAX_FILE_BYTES + 1)  # sparse: instant, no disk used
    sub = load_submission(folder)
    entry = sub.entry("weights.bin")
    assert (entry.size, entry.refused) == (
        50_000_001, "50,000,001 bytes, over the 50,000,000-byte limit on files the harness reads")


def test_fifo_is_refused(tmp_path):
    folder = write_submission(tmp_path / "s")
    os.mkfifo(folder / "pipe.log")  # reading it would block forever
    assert refusals(load_submission(folder)) == {"pipe.log": "not a regular file (a FIFO, socket or device)"}


def test_unreadable_file_is_refused(tmp_path, monkeypatch):
    folder = write_submission(tmp_path / "s")
    real_access = os.access
    monkeypatch.setattr(submission_module.os, "access",
                        lambda path, mode: False if str(path).endswith("train.log") else real_access(path, mode))
    assert refusals(load_submission(folder)) == {"train.log": "cannot be read (permission denied)"}


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_unreadable_file_by_mode(tmp_path):
    folder = write_submission(tmp_path / "s")
    (folder / "train.log").chmod(0)
    assert refusals(load_submission(folder)) == {"train.log": "cannot be read (permission denied)"}


def test_unreadable_subfolder_is_refused(tmp_path, monkeypatch):
    folder = write_submission(tmp_path / "s", extra={"private/a.log": "x\n"})
    real_scandir = os.scandir

    def scandir(path="."):
        if str(path).endswith("private"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(submission_module.os, "scandir", scandir)
    sub = load_submission(folder)
    assert refusals(sub) == {"private/": "folder cannot be read (Permission denied)"}
    assert "private/a.log" not in kinds(sub)


def test_bad_folder_arguments_are_user_errors(tmp_path, monkeypatch):
    with pytest.raises(UserError, match="no such folder"):
        load_submission(tmp_path / "missing")
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(UserError, match="is not a folder"):
        load_submission(tmp_path / "file.txt")
    folder = write_submission(tmp_path / "s")

    def denied(path):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(submission_module.os, "scandir", denied)
    with pytest.raises(UserError, match=r"cannot read the folder \(Permission denied\)"):
        load_submission(folder)


# -- metadata -------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "raw, error, line",
    [
        (b'{\n  "val_bpb": 1.2\n  "name": "x"\n}', "line 3 column 3: Expecting ',' delimiter", 3),
        (b'{"name": "caf\xe9"}', "line 1 column 14: not UTF-8 text (byte 0xe9)", 1),
        (b"", "the file is empty", None),
        (b"  \n\t", "the file is empty", None),
        (b"[1.2]", "the top level is an array; it must be a JSON object", None),
        (b'"1.2"', "the top level is a string; it must be a JSON object", None),
        (b'{\n  "blurb": "NaN loss fixed",\n  "val_bpb": NaN\n}',
         "line 3 column 14: NaN is not a JSON number (RFC 8259 has no NaN or Infinity)", 3),
        (b'{"val_loss": -Infinity}', "line 1 column 14: -Infinity is not a JSON number (RFC 8259 has no NaN or Infinity)", 1),
        (b"[" * 100_000, "nested too deeply to parse", None),
        (b"\xef\xbb\xbf{}", "line 1 column 1: Unexpected UTF-8 BOM (decode using utf-8-sig)", 1),
    ],
)
def test_metadata_that_does_not_parse(raw, error, line):
    assert parse_metadata(raw) == (None, error, line, [])


def test_nan_inside_a_string_is_text():
    assert parse_metadata(b'{"blurb": "NaN Infinity", "val_bpb": 1.1}') == (
        {"blurb": "NaN Infinity", "val_bpb": 1.1}, None, None, [])


def test_duplicate_keys_parse_with_a_warning():
    document, error, _, warnings = parse_metadata(b'{"val_bpb": 1.3, "val_bpb": 1.1}')
    assert (document, error) == ({"val_bpb": 1.1}, None)
    assert warnings == ["key 'val_bpb' is given more than once; the last value is the one read"]


def test_broken_metadata_is_recorded_not_raised(tmp_path):
    sub = load_submission(write_submission(tmp_path / "s", metadata='{"val_bpb" 1.2}'))
    assert (sub.metadata, sub.metadata_file, sub.metadata_error, sub.metadata_error_line) == (
        None, "submission.json", "line 1 column 12: Expecting ':' delimiter", 1)


def test_submission_json_is_preferred_over_variants(tmp_path):
    folder = write_submission(tmp_path / "s", extra={"submission_int8.json": '{"val_bpb": 9.9}'})
    sub = load_submission(folder)
    assert (sub.metadata_file, sub.metadata["val_bpb"]) == ("submission.json", 1.2345)
    assert [f.relpath for f in sub.files_of(METADATA)] == ["submission.json", "submission_int8.json"]


def test_variant_name_is_read_when_alone(fixture_records):
    sub = load_submission(fixture_records / "track_10min_16mb" / "2026-03-24_74M_Ternary_UNet_FP8_10L_8192BPE_YaRN_NeoMuon")
    assert (sub.metadata_file, sub.metadata_error, sub.metadata["val_bpb"]) == ("submission_ternary.json", None, 1.1565)
    assert [f.relpath for f in sub.files_of(LOG)] == ["ternary_log_1337.txt", "ternary_log_42.txt", "ternary_log_7.txt"]


# -- real folders and measurements ----------------------------------------------------------------

def test_fixture_folders_classify(fixture_records):
    gdn = load_submission(fixture_records / "track_non_record_16mb" / "2026-04-04_GDN_Hybrid_LongContext")
    assert len(gdn.files_of(LOG)) == 10 and all(f.relpath.startswith("logs_experiment/") for f in gdn.files_of(LOG))
    assert [f.relpath for f in gdn.files_of(REQUIREMENTS)] == ["requirements.txt"]
    xnor = load_submission(fixture_records / "track_non_record_16mb" / "2026-04-05_118M_XNOR-Net_FP8_1024D_10L")
    assert (xnor.metadata_file, xnor.metadata, len(xnor.files_of(LOG))) == (None, None, 9)
    ttt = load_submission(fixture_records / "track_10min_16mb"
                          / "2026-04-23_SP8192_CaseOps_SparseGate_QuantGate_Loop45_PhasedTTT_PolarNS_MinLR_FusedCE")
    assert [f.relpath for f in ttt.files_of(OTHER)] == [
        "ttt_pr1767/seed_0_result.json", "ttt_pr1767/seed_1234_result.json", "ttt_pr1767/seed_42_result.json"]
    assert len(ttt.files_of(LOG)) == 7


def test_every_fixture_loads(fixture_records):
    folders = sorted(p for p in fixture_records.glob("*/*") if p.is_dir())
    assert len(folders) == 59
    for folder in folders:
        sub = load_submission(folder)
        assert sub.refused_files() == [] and sub.metadata_error is None, folder
        assert sub.track() == folder.parent.name


def test_measurements_of_a_generated_folder(tmp_path):
    folder = write_submission(tmp_path / "records" / rules.RECORD_TRACK / "entry",
                              extra={"kernels/attn.cu": "x" * 300, "tools/prep.py": "y" * 20})
    assert load_submission(folder).measurements() == {
        "files": {"code": 3, "log": 1, "metadata": 1, "readme": 1, "requirements": 0, "other": 0},
        "files_refused": 0,
        "code_bytes": len(GOOD_CODE),
        "other_code_bytes": 320,
        "other_code_files": {"kernels/attn.cu": 300, "tools/prep.py": 20},
        "metadata_file": "submission.json",
        "track": rules.RECORD_TRACK,
        "claimed": {"val_bpb": 1.2345, "val_loss": 2.0842, "bytes_total": 15_000_000, "bytes_code": len(GOOD_CODE),
                    "seeds": ["1337"]},
    }


def test_claims_read_per_seed_results_and_skip_wrong_types(fixture_records, tmp_path):
    sub = load_submission(fixture_records / "track_10min_16mb" / "2026-03-19_SlidingWindow_FP16Emb_10L_MuonWD_OvertoneInit")
    assert sub.claimed() == {
        "mean_val_bpb": 1.17475315,
        "seed_val_bpb": {"1337": 1.17558517, "42": 1.17423973, "7": 1.17443456},
        "seeds": ["1337", "42", "7"],
    }
    odd = load_submission(write_submission(tmp_path / "s", metadata={"val_bpb": "1.2", "bytes_total": True}))
    assert odd.claimed() == {}


def test_track_comes_from_the_folder_and_metadata(tmp_path):
    sub = load_submission(write_submission(tmp_path / "records" / rules.NON_RECORD_TRACK / "x",
                                           metadata={"val_bpb": 1.3, "track": "non-record-unlimited-compute-16mb"}))
    assert (sub.track(), sub.declared_track()) == (rules.NON_RECORD_TRACK, rules.NON_RECORD_TRACK)
    plain = load_submission(write_submission(tmp_path / "elsewhere", metadata={"val_bpb": 1.3, "track": "10min_16mb"}))
    assert (plain.track(), plain.declared_track()) == (None, rules.RECORD_TRACK)


def test_git_metadata_is_skipped(tmp_path):
    folder = write_submission(tmp_path / "s")
    subprocess.run(["git", "init", "-q", str(folder)], check=True)
    assert all(not f.relpath.startswith(".git/") for f in load_submission(folder).files)
