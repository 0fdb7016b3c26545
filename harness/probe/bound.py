"""The probe's test: is a reported loss on the probe stream lower than any legal evaluation can report?

Setting. The stream x_0..x_{N-1} is drawn from D (streams.py): x_0 = BOS, then P(x_t | x_{t-1}).
A legal evaluation scores the targets of a prefix x_1..x_K, each with a full distribution q_t over the
vocabulary that depends only on the artifact and x_0..x_{t-1} (however it was trained, however it adapts
on tokens already scored), and reports L = (1/K) sum_t -ln q_t(x_t).

The inequality (Barron's "no hypercompression"; Grunwald, The MDL Principle, 2007, section 3.3). Let
C_K = sum_{t<=K} -ln P(x_t | x_{t-1}), what D itself pays on the same targets; the harness computes it
exactly from the stream it drew. Z_K = prod_{t<=K} q_t(x_t) / P(x_t | x_{t-1}) is a non-negative
supermartingale with Z_0 = 1, since E[q_t(x_t) / P(x_t | x_{t-1}) | x_<t] = sum_b q_t(b) <= 1. Markov's
inequality (Ville's, for a K that may depend on the stream) gives P(Z_K >= 1/alpha) <= alpha, that is:

    P( K * L <= C_K - ln(1/alpha) ) <= alpha        for any legal evaluation.

No variance, no bound on a token's loss, no assumption on the model: the false-alarm rate is at most
`alpha` per evaluation mode (ALPHA = 1e-6; over m modes at most m * alpha). In the other direction the
test is sharp: a loss below C_K / K by more than ln(1/alpha) / K (5e-5 nats on the default stream), plus
how far C_K / K wanders over the prefixes considered (below), is caught.

What the harness does not know is K: a script may drop a last partial window or batch. The test assumes
the reported loss is the mean over a prefix of at least MIN_SCORED_FRACTION of the stream's targets (every
evaluation we know scores all of them, or all but a last partial window) and flags only when the
inequality fails for every such K. The p-value is the largest over those K; the floor is the lowest loss
a legal evaluation can report at level alpha: min over K of (C_K - ln(1/alpha)) / K. A loss printed with
few decimals is taken at the top of its rounding interval.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

ALPHA = 1e-6  # false-alarm rate per evaluation mode
MIN_SCORED_FRACTION = 0.5  # the reported loss is assumed to cover a prefix of at least this share of the targets


@dataclass(frozen=True)
class BoundTest:
    """One reported loss against D's code length on the probe stream."""

    val_loss: float  # as reported
    rounding: float  # how far the printed value may be below the computed one
    floor: float  # the lowest loss a legal evaluation reports except with probability alpha
    p_value: float  # the smallest alpha at which this loss would be flagged
    alpha: float
    scored: tuple[int, int]  # the prefix lengths K considered (first, last)
    code_length_mean: float  # C_K / K at the longest K considered: D's own loss on those targets

    @property
    def flagged(self) -> bool:
        return self.p_value < self.alpha

    @property
    def margin(self) -> float:
        """val_loss - floor: negative when flagged (up to rounding)."""
        return self.val_loss - self.floor


class EntropyBound:
    """The test for one probe stream, from D's per-target code lengths."""

    def __init__(self, code_lengths: np.ndarray, alpha: float = ALPHA,
                 min_scored_fraction: float = MIN_SCORED_FRACTION) -> None:
        if not 0 < alpha < 1:
            raise ValueError(f"alpha must be in (0, 1), got {alpha}")
        self.cumulative = np.cumsum(np.asarray(code_lengths, dtype=np.float64))  # C_K at index K - 1
        self.alpha, self.min_scored_fraction = alpha, min_scored_fraction

    @property
    def targets(self) -> int:
        return len(self.cumulative)

    def scored_range(self, scored: int | None) -> tuple[int, int]:
        """The K considered: exactly `scored` when known, else every prefix of at least the fraction."""
        if scored is not None:
            if not 1 <= scored <= self.targets:
                raise ValueError(f"{scored} scored targets, but the stream has {self.targets}")
            return scored, scored
        return max(1, math.ceil(self.min_scored_fraction * self.targets)), self.targets

    def test(self, val_loss: float, rounding: float = 0.0, scored: int | None = None) -> BoundTest:
        first, last = self.scored_range(scored)
        prefix = np.arange(first, last + 1, dtype=np.float64)
        code = self.cumulative[first - 1:last]
        threshold = math.log(1 / self.alpha)
        floor = float(np.min((code - threshold) / prefix))
        # -ln p at the K least favourable to flagging: the smallest excess of D's code over the reported one.
        excess = float(np.min(code - prefix * (val_loss + rounding)))
        p_value = 1.0 if excess <= 0 else math.exp(-excess)
        return BoundTest(val_loss, rounding, floor, p_value, self.alpha, (first, last),
                         float(code[-1] / last))
