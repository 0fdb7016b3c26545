"""bench/trained_weights.py: a brief training that really lowers the loss, and a held-out stream."""

import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

import trained_weights  # noqa: E402
from baseline_model import BaselineShapedGPT, ModelShape  # noqa: E402

TINY = ModelShape(vocab_size=64, num_layers=2, model_dim=64, num_heads=4, num_kv_heads=2, seq_len=32)


def test_training_lowers_the_loss_well_below_uniform_and_changes_the_weights():
    model = BaselineShapedGPT(TINY)
    before = model.tok_emb.weight.detach().clone()
    run = trained_weights.train_briefly(model, steps=80, batch_windows=16, lr=3e-3, log=None)
    assert run.first_loss > math.log(TINY.vocab_size) - 0.3  # starts near uniform
    assert run.last_loss < run.first_loss - 1.0
    assert not torch.equal(before, model.tok_emb.weight)
    assert not model.training  # left in eval mode, as the evaluator expects


def test_refuses_bf16_weights_and_empty_runs():
    with pytest.raises(ValueError, match="fp32"):
        trained_weights.train_briefly(BaselineShapedGPT(TINY).bfloat16(), steps=1, batch_windows=1, log=None)
    with pytest.raises(ValueError, match="at least 1"):
        trained_weights.train_briefly(BaselineShapedGPT(TINY), steps=0, batch_windows=4, log=None)


def test_the_scored_stream_is_the_chains_documents_but_not_the_training_ones():
    scored = trained_weights.markov_stream(5_000, 64)
    again = trained_weights.markov_stream(5_000, 64)
    trained = trained_weights.markov_stream(5_000, 64, trained_weights.TRAIN_SAMPLE_SEED)
    assert scored.dtype == np.uint16 and len(scored) == 5_000 and scored.max() < 64
    assert np.array_equal(scored, again)
    assert not np.array_equal(scored, trained)
    assert scored[0] == trained[0] == 1  # documents start with BOS


def test_learning_rate_warms_up_then_decays_to_a_tenth():
    rates = [trained_weights.learning_rate(step, 100, 1.0) for step in range(100)]
    assert rates[0] == pytest.approx(0.1) and rates[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(rates[9:], rates[10:]))
    assert rates[-1] == pytest.approx(0.1)
