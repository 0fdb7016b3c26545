"""Tiny random models and byte tables for the evaluator's tests (CPU, float64, deterministic).

Not tests themselves: helpers imported by test_evaluator*.py. The models depend on their whole
context (a wrong window or a wrong position would change the loss), and byte tables are built from
arrays so that no tokenizer is needed.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from harness.data.bytes import ByteTable

VOCAB = 41
BOUNDARY_IDS = (0, 1, 2)  # like pad/bos/eos: zero bytes, and no leading space after them


def byte_table(vocab: int = VOCAB, seed: int = 0) -> ByteTable:
    """A byte table built from arrays, no tokenizer: boundary tokens count 0 bytes; the rest 1-4
    bytes, about half with a leading space."""
    rng = np.random.default_rng(seed)
    base = rng.integers(1, 5, size=vocab).astype(np.int16)
    space = rng.random(vocab) < 0.5
    boundary = np.zeros(vocab, dtype=bool)
    boundary[list(BOUNDARY_IDS)] = True
    base[boundary] = 0
    space[boundary] = False
    return ByteTable(base_bytes=base, has_leading_space=space, is_boundary=boundary)


def random_stream(length: int, vocab: int = VOCAB, seed: int = 1) -> np.ndarray:
    """Random ids with boundary tokens sprinkled in (so the leading-space rule matters)."""
    rng = np.random.default_rng(seed)
    stream = rng.integers(0, vocab, size=length).astype(np.uint16)
    stream[rng.random(length) < 0.1] = 1
    return stream


class TinyTransformer(nn.Module):
    """A causal transformer small enough for CPU float64: embedding, learned positions, pre-norm
    blocks with causal attention and a GELU MLP, a soft-capped tied head."""

    def __init__(self, vocab: int = VOCAB, dim: int = 16, layers: int = 2, heads: int = 2, max_len: int = 64,
                 seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.heads = heads
        self.embed = nn.Embedding(vocab, dim)
        self.position = nn.Parameter(torch.randn(max_len, dim) * 0.3)
        self.blocks = nn.ModuleList(
            nn.ModuleDict(dict(qkv=nn.Linear(dim, 3 * dim), out=nn.Linear(dim, dim),
                               up=nn.Linear(dim, 2 * dim), down=nn.Linear(2 * dim, dim)))
            for _ in range(layers)
        )
        self.double().eval()

    def forward_logits(self, input_ids: torch.Tensor, last_n: int | None = None) -> torch.Tensor:
        batch, length = input_ids.shape
        x = self.embed(input_ids) + self.position[:length]
        for block in self.blocks:
            q, k, v = block["qkv"](F.layer_norm(x, x.shape[-1:])).chunk(3, dim=-1)
            q, k, v = (t.view(batch, length, self.heads, -1).transpose(1, 2) for t in (q, k, v))
            attended = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            x = x + block["out"](attended.transpose(1, 2).reshape(batch, length, -1))
            x = x + block["down"](F.gelu(block["up"](F.layer_norm(x, x.shape[-1:]))))
        logits = 5.0 * torch.tanh(F.linear(x, self.embed.weight) / 5.0)
        return logits if last_n is None else logits[:, -last_n:]


class CausalConvModel(nn.Module):
    """Logits from a causal convolution over the last `width` embeddings, plus a term that depends on
    the absolute position in the window (so the same token scored from the wrong window differs)."""

    def __init__(self, vocab: int = VOCAB, dim: int = 8, width: int = 4, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.width = width
        self.embed = nn.Embedding(vocab, dim)
        self.conv = nn.Conv1d(dim, dim, width)
        self.head = nn.Linear(dim, vocab)
        self.double().eval()

    def forward_logits(self, input_ids: torch.Tensor, last_n: int | None = None) -> torch.Tensor:
        x = self.embed(input_ids).transpose(1, 2)
        x = self.conv(F.pad(x, (self.width - 1, 0))).transpose(1, 2)
        positions = torch.arange(input_ids.shape[1], dtype=x.dtype)[None, :, None]
        logits = self.head(torch.tanh(x + 0.05 * positions))
        return logits if last_n is None else logits[:, -last_n:]


def logits_fn(model: nn.Module):
    return lambda ids, last_n: model.forward_logits(ids, last_n)
