"""Weights that score like a trained model's, for comparing the evaluator's paths at a realistic loss.

With random weights the baseline-shaped model scores about 19.9 nats a token: its logits sit near the
soft-cap, where bf16's rounding of a logit is worth hundredths of a nat, so how far two bf16 paths are
apart there says little about a submission's model (about 2 nats a token on the validation split).
`train_briefly` gives the model a few hundred Adam steps on the synthetic Markov chain that
bench/train_step.py trains on (its loss falls from ln(vocab) toward about 2.06 nats, as on text), and
`markov_stream` draws the stream to score from the same chain with another seed, so the scored text is
held out. fp32 weights with bf16 autocast on CUDA (plain fp32 on the CPU); the caller casts the result
to the dtype it evaluates in. Written for this benchmark; it is not the challenge's code.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from train_step import markov_tokens

CHAIN_SEED = 0  # the chain itself (bench/train_step.py's shards use the same one)
TRAIN_SAMPLE_SEED, SCORE_SAMPLE_SEED = 11, 12  # documents to train on, documents to score


@dataclass(frozen=True)
class TrainingRun:
    steps: int
    batch_windows: int
    seq_len: int
    lr: float
    first_loss: float  # the first step's training loss
    last_loss: float  # mean of the last few steps' training losses
    wall_s: float

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def markov_stream(tokens: int, vocab: int, sample_seed: int = SCORE_SAMPLE_SEED) -> np.ndarray:
    """`tokens` ids of BOS-led documents from the benchmark's Markov chain (uint16, as markov_tokens draws them)."""
    return markov_tokens(tokens, vocab, CHAIN_SEED, sample_seed)


def learning_rate(step: int, steps: int, peak: float, warmup: int = 10) -> float:
    """Linear warm-up to `peak`, then linear decay to a tenth of it at the last step."""
    if step < warmup:
        return peak * (step + 1) / warmup
    remaining = (steps - 1 - step) / max(1, steps - 1 - warmup)
    return peak * (0.1 + 0.9 * remaining)


def train_briefly(model: nn.Module, steps: int, batch_windows: int, lr: float = 2e-3, seed: int = 0,
                  train_tokens: int | None = None, log=print) -> TrainingRun:
    """Train `model` (a bench/baseline_model.BaselineShapedGPT in fp32, on its device) in place for
    `steps` Adam steps of `batch_windows` random windows of its sequence length from the chain."""
    if steps < 1 or batch_windows < 1:
        raise ValueError(f"steps and batch_windows must be at least 1, got {steps} and {batch_windows}")
    if next(model.parameters()).dtype != torch.float32:
        raise ValueError("train_briefly trains fp32 weights (bf16 autocast on CUDA); cast after training")
    device = next(model.parameters()).device
    seq_len, vocab = model.shape.seq_len, model.shape.vocab_size
    train_tokens = train_tokens or max(4 * seq_len, min(steps * batch_windows * seq_len, 16_000_000))
    stream = torch.from_numpy(markov_stream(train_tokens, vocab, TRAIN_SAMPLE_SEED).astype(np.int64)).to(device)
    generator = torch.Generator(device="cpu").manual_seed(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, betas=(0.9, 0.95), eps=1e-10)
    offsets = torch.arange(seq_len + 1, device=device)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else contextlib.nullcontext()
    losses = []
    start = time.perf_counter()
    model.train()
    try:
        for step in range(steps):
            starts = torch.randint(0, len(stream) - seq_len - 1, (batch_windows,), generator=generator).to(device)
            rows = stream[starts[:, None] + offsets]
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(step, steps, lr)
            with autocast:
                logits = model.forward_logits(rows[:, :-1])
            loss = F.cross_entropy(logits.float().reshape(-1, vocab), rows[:, 1:].reshape(-1))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
            if log and (step == 0 or (step + 1) % max(1, steps // 10) == 0):
                log(f"training step {step + 1}/{steps}: loss {losses[-1]:.4f}")
    finally:
        model.eval()
    tail = losses[-min(10, len(losses)):]
    return TrainingRun(steps, batch_windows, seq_len, lr, losses[0], sum(tail) / len(tail),
                       round(time.perf_counter() - start, 2))
