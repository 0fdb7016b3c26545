# A legal causal cache: the count row for the context (over the whole vocabulary) is read and
# normalised before the token is looked at, the mixture is a full distribution, and the cache learns
# the token only after it was scored.
# expect-verdict: clean
import math

import torch


def eval_val_cache(model, tokens, vocab, lam=0.2):
    counts = torch.zeros(vocab, vocab)
    nll_sum = 0.0
    probs = torch.softmax(model.forward_logits(tokens[None, :-1])[0].float(), dim=-1)
    for t in range(1, tokens.numel()):
        prev = tokens[t - 1]
        row = counts[prev]
        cache_dist = (row + 1e-3) / (row.sum() + 1e-3 * vocab)
        mixed = (1 - lam) * probs[t - 1] + lam * cache_dist
        nll_sum -= math.log(mixed[tokens[t]].item())
        counts[prev, tokens[t]] += 1
    return nll_sum
