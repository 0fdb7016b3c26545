"""The probe's distributions D: where the probe stream's tokens come from, with their exact entropy rates.

Every D is a first-order chain started at BOS: x_0 = BOS, then

    P(x_t = b | x_{t-1} = a) = w[a] * E(b | a) + (1 - w[a]) * base(b),

with E(. | a) the empirical successors of `a` in the fitting tokens, C(a) how many there are, and
w[a] = C(a) / (C(a) + MARKOV_SMOOTHING) for the Markov stream; w = 0 (i.i.d. from `base`) otherwise:
- unigram: base = the fitting tokens' unigram frequencies, BOS included, so that documents start with
  BOS and have geometric lengths with the training split's mean (an empty document has probability
  P(BOS), about 1e-3 on the challenge's data);
- uniform: BOS at the fitting tokens' rate, every other id of the vocabulary equally likely;
- markov: base = the unigram, E and C counted over consecutive pairs: a lower H(D), sharper only for
  a model that has learnt the bigrams (a briefly trained one has not: see the README).
The fitting tokens are the training shards in name order, at most FIT_MAX_TOKENS of them.

`entropy_rate()` is exact: H(base) for the i.i.d. streams; sum_a pi(a) H(P(. | a)) for the chain, with
pi its stationary distribution (power iteration from the unigram) and each row's entropy in closed form
(the row's pairs, plus the base part over every other token). `code_lengths(stream)` is
-ln P(x_t | x_{t-1}) for t = 1..N-1: what D itself pays on the stream, which the bound (bound.py) needs.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from harness.data.shards import read_shard, shard_paths
from harness.errors import UserError

UNIGRAM, MARKOV, UNIFORM = "unigram", "markov", "uniform"
STREAMS = (UNIGRAM, MARKOV, UNIFORM)
FIT_MAX_TOKENS = 100_000_000  # one challenge shard: the unigram and bigram statistics are settled long before
MARKOV_SMOOTHING = 16.0  # pseudo-count pulling a rarely seen token's successors toward the unigram
_FIT_CHUNK_TOKENS = 1 << 24
_STATIONARY_TOLERANCE = 1e-13  # L1 change of pi between two power-iteration steps
_STATIONARY_MAX_STEPS = 20_000


@dataclass(frozen=True)
class Chain:
    """One D: the base distribution, and for the Markov stream the sparse successor counts."""

    kind: str
    bos_id: int
    base: np.ndarray  # float64 [vocab], sums to 1
    pair_codes: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # a * vocab + b, sorted
    pair_counts: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    context_counts: np.ndarray | None = None  # C(a), [vocab]; None for an i.i.d. stream
    fitted_on: dict = field(default_factory=dict)  # shards and token count the statistics come from

    @property
    def vocab_size(self) -> int:
        return len(self.base)

    @property
    def weights(self) -> np.ndarray:
        """w[a]: how much row a trusts its own successors over the base distribution."""
        if self.context_counts is None:
            return np.zeros(self.vocab_size)
        return self.context_counts / (self.context_counts + MARKOV_SMOOTHING)

    def _pairs(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(a, b, P(b | a)) for every pair seen in the fitting tokens."""
        previous, following = np.divmod(self.pair_codes, self.vocab_size)
        weights = self.weights[previous]
        empirical = self.pair_counts / self.context_counts[previous]
        return previous, following, weights * empirical + (1 - weights) * self.base[following]

    def code_lengths(self, stream: np.ndarray) -> np.ndarray:
        """-ln P(x_t | x_{t-1}) for t = 1..N-1, in nats (float64)."""
        previous, following = stream[:-1].astype(np.int64), stream[1:].astype(np.int64)
        probability = self.base[following]
        if self.context_counts is not None:
            codes = previous * self.vocab_size + following
            index = np.minimum(np.searchsorted(self.pair_codes, codes), len(self.pair_codes) - 1)
            seen = self.pair_codes[index] == codes
            empirical = np.where(seen, self.pair_counts[index], 0) / np.maximum(self.context_counts[previous], 1)
            weights = self.weights[previous]
            probability = weights * empirical + (1 - weights) * probability
        return -np.log(probability)

    def entropy_rate(self) -> float:
        """H(D) in nats per token: exact up to float64 and the stationary distribution's tolerance."""
        if self.context_counts is None:
            return _entropy(self.base)
        previous, following, probability = self._pairs()
        size, weights = self.vocab_size, self.weights
        base_log_base = np.where(self.base > 0, self.base * np.log(np.where(self.base > 0, self.base, 1)), 0.0)
        seen_part = np.bincount(previous, weights=-probability * np.log(probability), minlength=size)
        base_seen = np.bincount(previous, weights=self.base[following], minlength=size)
        base_log_base_seen = np.bincount(previous, weights=base_log_base[following], minlength=size)
        # Tokens a row never saw get (1 - w) * base(b): their entropy in closed form.
        unseen_part = -(1 - weights) * ((base_log_base.sum() - base_log_base_seen)
                                        + np.log(1 - weights) * (1 - base_seen))
        return float(self.stationary() @ (seen_part + unseen_part))

    def stationary(self) -> np.ndarray:
        """pi with pi P = pi, by power iteration from the unigram (the chain's own frequencies)."""
        if self.context_counts is None:
            return self.base.copy()
        previous, following, _ = self._pairs()
        weights = self.weights
        empirical = self.pair_counts / self.context_counts[previous]
        pi = self.base.copy()
        for _ in range(_STATIONARY_MAX_STEPS):
            step = np.bincount(following, weights=pi[previous] * weights[previous] * empirical,
                               minlength=self.vocab_size) + (pi @ (1 - weights)) * self.base
            step /= step.sum()
            change, pi = np.abs(step - pi).sum(), step
            if change < _STATIONARY_TOLERANCE:
                return pi
        raise ArithmeticError(f"the {self.kind} chain's stationary distribution did not converge")

    def sample(self, tokens: int, seed: int) -> np.ndarray:
        """`tokens` tokens of D (x_0 = BOS) as uint16, reproducible from `seed`."""
        rng = np.random.default_rng(seed)
        base_draws = rng.choice(self.vocab_size, size=tokens - 1, p=self.base)
        if self.context_counts is None:
            return np.concatenate([[self.bos_id], base_draws]).astype(np.uint16)
        return self._walk(tokens, base_draws, rng)

    def _walk(self, tokens: int, base_draws: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """The chain step by step: with probability w[a] a successor of a drawn in proportion to its
        count (a bisection in the pairs' cumulative counts), else the pre-drawn base token."""
        row_start = np.searchsorted(self.pair_codes, np.arange(self.vocab_size + 1) * self.vocab_size)
        cumulative = np.cumsum(self.pair_counts)
        before_row = np.concatenate([[0], cumulative])[row_start].tolist()
        cumulative_list, following = cumulative.tolist(), (self.pair_codes % self.vocab_size).tolist()
        weights, contexts = self.weights.tolist(), self.context_counts.tolist()
        use_pairs, picks = rng.random(tokens - 1).tolist(), rng.random(tokens - 1).tolist()
        draws = base_draws.tolist()
        stream = [self.bos_id]
        current = self.bos_id
        for t in range(tokens - 1):
            if use_pairs[t] < weights[current]:
                rank = before_row[current] + int(picks[t] * contexts[current])
                current = following[bisect.bisect_right(cumulative_list, rank)]
            else:
                current = draws[t]
            stream.append(current)
        return np.asarray(stream, dtype=np.uint16)

    def describe(self) -> dict:
        """What the manifest records about D."""
        description = {"kind": self.kind, "vocab_size": self.vocab_size, "bos_id": self.bos_id,
                       "support": int(np.count_nonzero(self.base)), "bos_probability": float(self.base[self.bos_id]),
                       "fitted_on": self.fitted_on}
        if self.context_counts is not None:
            description |= {"smoothing": MARKOV_SMOOTHING, "distinct_pairs": int(len(self.pair_codes))}
        return description


def _entropy(probabilities: np.ndarray) -> float:
    positive = probabilities[probabilities > 0]
    return float(-(positive * np.log(positive)).sum())


def fit_chain(kind: str, dataset_dir: Path, vocab_size: int, bos_id: int,
              max_tokens: int = FIT_MAX_TOKENS) -> Chain:
    """D of `kind`, fitted on the first `max_tokens` tokens of the dataset's training shards."""
    if kind not in STREAMS:
        raise UserError(f"unknown probe stream {kind!r}; choose one of {', '.join(STREAMS)}")
    counts = np.zeros(vocab_size, dtype=np.int64)
    codes, code_counts = [], []
    used: list[dict] = []
    carry = None  # the last token of the previous chunk: its pair with the next chunk's first token counts
    for path in shard_paths(dataset_dir, "train"):
        shard = read_shard(path)
        take = min(len(shard), max_tokens - sum(entry["tokens"] for entry in used))
        used.append({"shard": path.name, "tokens": int(take)})
        for start in range(0, take, _FIT_CHUNK_TOKENS):
            chunk = np.asarray(shard[start:min(start + _FIT_CHUNK_TOKENS, take)], dtype=np.int64)
            if chunk.max() >= vocab_size:
                raise UserError(f"holds token id {int(chunk.max())}, not below the tokenizer's vocabulary of "
                                f"{vocab_size}", path)
            counts += np.bincount(chunk, minlength=vocab_size)
            if kind == MARKOV:
                joined = chunk if carry is None else np.concatenate([[carry], chunk])
                unique, unique_counts = np.unique(joined[:-1] * vocab_size + joined[1:], return_counts=True)
                codes.append(unique)
                code_counts.append(unique_counts)
                carry = int(chunk[-1])
        if sum(entry["tokens"] for entry in used) >= max_tokens:
            break
    total = int(counts.sum())
    if total < 2:
        raise UserError("has no training tokens to fit the probe's distribution on", dataset_dir)
    fitted_on = {"dataset": dataset_dir.name, "shards": used, "tokens": total}
    unigram = counts / total
    if kind == UNIGRAM:
        return Chain(UNIGRAM, bos_id, unigram, fitted_on=fitted_on)
    if kind == UNIFORM:
        bos_rate = unigram[bos_id]
        base = np.full(vocab_size, (1 - bos_rate) / (vocab_size - 1))
        base[bos_id] = bos_rate
        return Chain(UNIFORM, bos_id, base, fitted_on=fitted_on)
    pair_codes, inverse = np.unique(np.concatenate(codes), return_inverse=True)
    pair_counts = np.bincount(inverse, weights=np.concatenate(code_counts)).astype(np.int64)
    context_counts = np.bincount(pair_codes // vocab_size, weights=pair_counts, minlength=vocab_size)
    return Chain(MARKOV, bos_id, unigram, pair_codes, pair_counts, context_counts, fitted_on)
