"""Self-extracting scripts are decoded statically (never run) and their payload is scanned."""

from __future__ import annotations

import base64
import bz2
import gzip
import lzma
import zlib
from pathlib import Path

import pytest

from harness.compliance import scan_path, unwrap
from harness.compliance.sources import sources_for_path

CASES = Path(__file__).resolve().parent / "compliance_cases"
ILLEGAL = (CASES / "ttt_illegal_train_then_score.py").read_text(encoding="utf-8")


def _raw_lzma_b85(source: str) -> str:
    raw = lzma.compress(source.encode(), format=lzma.FORMAT_RAW, filters=[{"id": lzma.FILTER_LZMA2}])
    return ('import lzma as L,base64 as B\n'
            f'exec(L.decompress(B.b85decode("{base64.b85encode(raw).decode()}"),format=L.FORMAT_RAW,filters=[{{"id":L.FILTER_LZMA2}}]))\n')


def _write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def test_record_format_wrapper_is_decoded_and_its_payload_flagged(tmp_path: Path) -> None:
    _write(tmp_path, "train_gpt.py", _raw_lzma_b85(ILLEGAL))
    report = scan_path(tmp_path)
    decoded = [f for f in report.files if f["label"] == "train_gpt.py[decoded]"]
    assert decoded and decoded[0]["wrapped_by"] == "lzma.decompress(base64.b85decode(...))"
    assert decoded[0]["lines"] == len(ILLEGAL.splitlines())
    assert report.verdict == "flag"
    flagged = [h for h in report.hits if h.outcome == "flag"]
    assert [(h.rule, h.unit) for h in flagged] == [("ttt_order", "train_gpt.py[decoded]")]
    assert any(h.rule == "dynamic_code" and h.kind == "wrapper" and h.outcome == "legal" for h in report.hits)


@pytest.mark.parametrize("decoder,encode", [
    ("zlib.decompress(base64.b64decode(P))", lambda b: base64.b64encode(zlib.compress(b))),
    ("gzip.decompress(base64.a85decode(P))", lambda b: base64.a85encode(gzip.compress(b))),
    ("bz2.decompress(base64.b32decode(P))", lambda b: base64.b32encode(bz2.compress(b))),
])
def test_other_codecs_and_a_payload_held_in_a_module_name(tmp_path: Path, decoder: str, encode) -> None:
    payload = encode(ILLEGAL.encode()).decode()
    _write(tmp_path, "train_gpt.py", f'import base64, zlib, gzip, bz2\nP = {payload!r}\nexec({decoder}.decode())\n')
    report = scan_path(tmp_path / "train_gpt.py")
    assert report.verdict == "flag"
    assert {h.rule for h in report.hits if h.outcome == "flag"} == {"ttt_order"}


def test_nested_wrappers_are_followed(tmp_path: Path) -> None:
    _write(tmp_path, "train_gpt.py", _raw_lzma_b85(_raw_lzma_b85(ILLEGAL)))
    labels = [u.label for u in sources_for_path(tmp_path / "train_gpt.py").units]
    assert labels == ["train_gpt.py", "train_gpt.py[decoded]", "train_gpt.py[decoded][decoded]"]
    assert scan_path(tmp_path).verdict == "flag"


def test_exec_of_a_sibling_file_reaches_it(tmp_path: Path) -> None:
    _write(tmp_path, "train_gpt.py", 'exec(open(__file__.replace("train_gpt.py", "real_code.py")).read())\n')
    _write(tmp_path, "real_code.py", ILLEGAL)
    report = scan_path(tmp_path)
    assert {f["label"]: f["role"] for f in report.files} == {"train_gpt.py": "entry", "real_code.py": "reached"}
    assert report.verdict == "flag"


def test_a_payload_over_the_size_limit_is_not_decoded(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(unwrap, "MAX_DECODED_BYTES", 1000)
    _write(tmp_path, "train_gpt.py", _raw_lzma_b85(ILLEGAL + "#" * 5000 + "\n"))
    report = scan_path(tmp_path)
    assert report.verdict == "needs_review"
    review = [h for h in report.hits if h.outcome == "review"]
    assert [(h.rule, h.kind) for h in review] == [("dynamic_code", "undecodable_payload")]
    assert "1,000-byte decoding limit" in review[0].reason


def test_brotli_and_computed_payloads_are_reviewed_not_run(tmp_path: Path) -> None:
    _write(tmp_path, "a.py", 'import brotli, base64\nexec(brotli.decompress(base64.b85decode("VPa!")))\n')
    _write(tmp_path / "b", "b.py", 'import os, zlib\nexec(zlib.decompress(bytes.fromhex(os.environ["CODE"])))\n')
    brotli_report = scan_path(tmp_path / "a.py")
    assert brotli_report.verdict == "needs_review"
    assert "does not decode brotli" in " ".join(brotli_report.reasons)
    computed = scan_path(tmp_path / "b" / "b.py")
    assert computed.verdict == "needs_review"
    assert [(h.rule, h.kind) for h in computed.hits] == [("dynamic_code", "undecodable_payload")]  # one hit per place


def test_a_payload_embedded_in_an_ordinary_script_is_scanned_and_reviewed(tmp_path: Path) -> None:
    wrapper_line = _raw_lzma_b85("x = 1\n").splitlines()[1]
    _write(tmp_path, "train_gpt.py", "import lzma as L, base64 as B\n\ndef main():\n    return 1\n\n" + wrapper_line + "\n")
    report = scan_path(tmp_path)
    assert report.verdict == "needs_review"
    assert [(h.rule, h.kind, h.outcome) for h in report.hits] == [("dynamic_code", "embedded_payload", "review")]
