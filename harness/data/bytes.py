"""Byte accounting of SentencePiece tokens, exactly as the challenge counts the bytes behind val_bpb.

The bytes of target token t after token p (RULES.md R3.2; the challenge's train_gpt.py):
    base_bytes[t] + (1 if has_leading_space[t] and not is_boundary[p] else 0)
base_bytes is the UTF-8 length of t's piece without its leading "▁" (byte-fallback pieces <0xNN> count
1; control, unknown and unused pieces count 0); is_boundary marks control/unknown/unused pieces, BOS
among them, so the first token of a document never pays for a leading space.

What the sum means, per document ([BOS] + ids, all targets scored), pinned in tests/test_bytes.py
against the challenge's tokenizer: it equals the UTF-8 length of `decode(ids)`, except that each <unk>
token adds nothing where decode prints " ⁇ " (5 bytes), and a "▁" piece right after <unk> adds no space.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from harness.data.shards import load_tokens
from harness.errors import UserError

LEADING_SPACE = "\u2581"  # "▁", SentencePiece's escaped space


@dataclass(frozen=True)
class ByteTable:
    base_bytes: np.ndarray  # int16 [vocab]
    has_leading_space: np.ndarray  # bool [vocab]
    is_boundary: np.ndarray  # bool [vocab]

    @property
    def vocab_size(self) -> int:
        return int(self.base_bytes.shape[0])

    def to_torch(self, device: Any = "cpu"):
        """(base_bytes int16, has_leading_space bool, is_boundary bool) as tensors on `device`."""
        import torch  # only the GPU evaluator needs tensors

        return (torch.as_tensor(self.base_bytes, dtype=torch.int16, device=device),
                torch.as_tensor(self.has_leading_space, dtype=torch.bool, device=device),
                torch.as_tensor(self.is_boundary, dtype=torch.bool, device=device))


def build_byte_table(tokenizer: str | Path | Any, vocab_size: int | None = None) -> ByteTable:
    """The byte table of a SentencePiece model (a path or a SentencePieceProcessor).

    `vocab_size` pads the table to a model's larger output vocabulary; the padding ids are boundaries
    worth 0 bytes, as in the challenge's code.
    """
    processor = _processor(tokenizer)
    pieces = int(processor.vocab_size())
    size = max(pieces, vocab_size or 0)
    base_bytes = np.zeros(size, dtype=np.int16)
    has_leading_space = np.zeros(size, dtype=bool)
    is_boundary = np.ones(size, dtype=bool)
    for token_id in range(pieces):
        if processor.is_control(token_id) or processor.is_unknown(token_id) or processor.is_unused(token_id):
            continue
        is_boundary[token_id] = False
        if processor.is_byte(token_id):
            base_bytes[token_id] = 1
            continue
        piece = processor.id_to_piece(token_id)
        if piece.startswith(LEADING_SPACE):
            has_leading_space[token_id] = True
            piece = piece[1:]
        base_bytes[token_id] = len(piece.encode("utf-8"))
    return ByteTable(base_bytes, has_leading_space, is_boundary)


def _processor(tokenizer: str | Path | Any):
    if not isinstance(tokenizer, (str, Path)):
        return tokenizer
    from harness.data.build import load_tokenizer  # the one place that turns a bad model file into a UserError

    return load_tokenizer(tokenizer)


def token_byte_counts(prev_ids: Any, target_ids: Any, table: ByteTable) -> np.ndarray:
    """Bytes of each target given the token before it (arrays of equal shape), as int64."""
    prev_ids, target_ids = np.asarray(prev_ids), np.asarray(target_ids)
    if prev_ids.shape != target_ids.shape:
        raise ValueError(f"prev_ids {prev_ids.shape} and target_ids {target_ids.shape} differ in shape")
    for ids in (prev_ids, target_ids):
        if ids.size and (ids.min() < 0 or ids.max() >= table.vocab_size):
            bad = int(ids[(ids < 0) | (ids >= table.vocab_size)][0])
            raise UserError(f"token id {bad} is outside the tokenizer's vocabulary of {table.vocab_size}")
    counts = table.base_bytes[target_ids].astype(np.int64)
    counts += table.has_leading_space[target_ids] & ~table.is_boundary[prev_ids]
    return counts


def stream_bytes(tokens: Any, table: ByteTable, chunk: int = 1 << 22) -> int:
    """Total bytes of the targets tokens[1:] of a token stream (what val_bpb divides by), in chunks so
    that a whole validation split needs little memory."""
    tokens = np.asarray(tokens)
    total = 0
    for start in range(1, tokens.size, chunk):
        stop = min(start + chunk, tokens.size)
        total += int(token_byte_counts(tokens[start - 1:stop - 1], tokens[start:stop], table).sum())
    return total


def count_scored(dataset_dir: Path, tokenizer: Path, max_tokens: int | None) -> tuple[int, int]:
    """The harness's own count of what the worker must score: targets (tokens - 1) and their bytes."""
    tokens = load_tokens(dataset_dir, "val")
    if max_tokens:
        tokens = tokens[:max_tokens]
    if len(tokens) < 2:
        raise UserError("the validation split holds fewer than 2 tokens", dataset_dir)
    return len(tokens) - 1, stream_bytes(tokens, build_byte_table(tokenizer))
