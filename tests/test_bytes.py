"""Byte accounting against the challenge's own tokenizer, on real English text, document by document."""

from __future__ import annotations

import numpy as np
import pytest
import sentencepiece as spm
from data_helpers import tiny_documents, tiny_tokenizer

from harness.data.bytes import build_byte_table, stream_bytes, token_byte_counts
from harness.errors import UserError

UNK_SURFACE_BYTES = len(" \u2047 ".encode("utf-8"))  # decode() prints <unk> as " ⁇ "


@pytest.fixture(scope="module")
def real(real_tokenizer_module):
    processor = spm.SentencePieceProcessor(model_file=str(real_tokenizer_module))
    return processor, build_byte_table(processor)


@pytest.fixture(scope="module")
def real_tokenizer_module():
    from conftest import REAL_TOKENIZER

    if not REAL_TOKENIZER.is_file():
        pytest.skip(f"real tokenizer not present at {REAL_TOKENIZER}")
    return REAL_TOKENIZER


def document_bytes(ids: list[int], table) -> int:
    """Bytes of all targets of one document as the evaluator scores it: [BOS] + ids."""
    stream = np.array([1] + ids)
    return int(token_byte_counts(stream[:-1], stream[1:], table).sum())


def test_real_table_marks_exactly_the_control_and_unknown_pieces(real):
    processor, table = real
    assert table.vocab_size == 1024
    assert np.flatnonzero(table.is_boundary).tolist() == [0, 1, 2, 3]  # <pad> <s> </s> <unk>
    assert table.base_bytes[:4].tolist() == [0, 0, 0, 0]
    assert (processor.id_to_piece(4), table.base_bytes[4], table.has_leading_space[4]) == ("\u2581t", 1, True)
    assert int(table.has_leading_space.sum()) == sum(processor.id_to_piece(i).startswith("\u2581")
                                                     for i in range(1024))
    assert not any(processor.is_byte(i) for i in range(1024))  # the challenge's model has no byte fallback


# (text, UTF-8 bytes of decode(encode(text)), bytes the accounting gives, <unk> tokens)
PINNED = [
    ("Hello world", 11, 11, 0),
    ("  leading and trailing spaces  ", 27, 27, 0),  # nmt_nfkc trims and squeezes whitespace
    ("one\n\ntwo\tthree", 13, 13, 0),
    ("ｆｕｌｌ width", 10, 10, 0),  # NFKC folds full-width letters before counting
    # ☃ is outside the vocabulary: s,n,ow (4) + "▁" (1) + <unk> (0) + "▁man" after a boundary (3) = 8, where
    # decode prints "snow  ⁇  man" (14 bytes)
    ("snow \u2603 man", 14, 8, 1),
    ("\u2603", 5, 0, 1),
    ("a_b", 7, 2, 1),  # "_" is not in the challenge's vocabulary either
]


@pytest.mark.parametrize("text, decoded_bytes, counted, unknowns", PINNED)
def test_pinned_strings(real, text, decoded_bytes, counted, unknowns):
    processor, table = real
    ids = processor.encode(text)
    assert len(processor.decode(ids).encode("utf-8")) == decoded_bytes
    assert document_bytes(ids, table) == counted
    assert ids.count(processor.unk_id()) == unknowns


def test_the_relation_on_every_pydoc_topic(real):
    """Summed bytes = UTF-8 length of the decoded text, minus 5 bytes per <unk> (decode prints " ⁇ ",
    the accounting counts 0) and minus 1 for each "▁" piece right after an <unk> (a boundary, so its
    space is not counted; decode prints it). No other difference, the first token after BOS included."""
    processor, table = real
    from pydoc_data.topics import topics

    unk = processor.unk_id()
    totals = {"docs": 0, "unk": 0, "spaces_after_unk": 0}
    for key in sorted(topics):
        ids = processor.encode(topics[key])
        decoded = len(processor.decode(ids).encode("utf-8"))
        unknowns = ids.count(unk)
        spaces_after_unk = sum(1 for p, t in zip(ids, ids[1:]) if p == unk and table.has_leading_space[t])
        assert document_bytes(ids, table) == decoded - UNK_SURFACE_BYTES * unknowns - spaces_after_unk, key
        totals["docs"] += 1
        totals["unk"] += unknowns
        totals["spaces_after_unk"] += spaces_after_unk
    # Every topic has <unk>s (its "*****" underline: "*" is outside the challenge's vocabulary), so both
    # corrections are exercised; PINNED above covers documents without any.
    assert totals["docs"] == len(topics) and totals["unk"] > 1000 and totals["spaces_after_unk"] > 100


def test_first_token_after_bos_pays_no_leading_space(real):
    processor, table = real
    ids = [processor.piece_to_id("\u2581t"), processor.piece_to_id("\u2581a")]
    assert processor.decode(ids) == "t a"  # decode drops the first piece's space too
    assert document_bytes(ids, table) == 3
    assert token_byte_counts(np.array([5]), np.array([4]), table).tolist() == [2]  # mid-document it pays


def test_byte_fallback_pieces_count_one_byte_each(tmp_path):
    """The challenge's model has no byte pieces, but its rule covers them: a tokenizer trained with
    byte_fallback spells ☃ as three <0xNN> pieces, 1 byte each, and the sum is then exactly the UTF-8
    length of the decoded text (no <unk> left)."""
    model = tiny_tokenizer(tmp_path / "fallback.model", vocab_size=640, byte_fallback=True)  # 256 byte pieces
    processor = spm.SentencePieceProcessor(model_file=str(model))
    table = build_byte_table(model)
    snowman = [processor.piece_to_id(f"<0x{b:02X}>") for b in "\u2603".encode("utf-8")]
    assert all(processor.is_byte(i) for i in snowman)
    assert table.base_bytes[snowman].tolist() == [1, 1, 1] and not table.is_boundary[snowman].any()
    for text in ["snow \u2603 man", "\u2603\u2603 at the start", "\u4e2d\u6587 text"] + tiny_documents(3):
        ids = processor.encode(text)
        assert processor.unk_id() not in ids
        assert document_bytes(ids, table) == len(processor.decode(ids).encode("utf-8"))


def test_table_padding_and_torch_tensors(real):
    import torch

    processor, _ = real
    table = build_byte_table(processor, vocab_size=1030)
    assert table.vocab_size == 1030
    assert table.is_boundary[1024:].all() and not table.base_bytes[1024:].any()
    base, space, boundary = table.to_torch("cpu")
    assert (base.dtype, space.dtype, boundary.dtype) == (torch.int16, torch.bool, torch.bool)
    assert base.tolist() == table.base_bytes.tolist()


def test_batches_and_stream_totals(real):
    processor, table = real
    ids = np.array([1] + processor.encode("The quick brown fox. " * 40))
    whole = stream_bytes(ids, table)
    assert whole == stream_bytes(ids, table, chunk=7) == len(("The quick brown fox. " * 40).strip())
    batch = ids[:81].reshape(1, 81)
    assert token_byte_counts(batch[:, :-1], batch[:, 1:], table).shape == (1, 80)


def test_bad_ids_and_shapes(real):
    _, table = real
    with pytest.raises(UserError, match="token id 1024 is outside the tokenizer's vocabulary of 1024"):
        token_byte_counts(np.array([1, 1]), np.array([5, 1024]), table)
    with pytest.raises(ValueError, match="differ in shape"):
        token_byte_counts(np.array([1, 1]), np.array([5]), table)
    with pytest.raises(UserError, match="tokenizer model not found"):
        build_byte_table("/nonexistent/x.model")
