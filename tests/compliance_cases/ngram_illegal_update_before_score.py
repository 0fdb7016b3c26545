# The cache learns the token before the position is scored: the target is written into the counts
# and then read back for its own prediction.
# expect-verdict: flag
# expect-hit: cache_update_before_score flag cache_write_before_read
import math

import torch


def eval_val_cache(model, tokens, vocab, lam=0.2):
    counts = torch.zeros(vocab, vocab)
    nll_sum = 0.0
    probs = torch.softmax(model.forward_logits(tokens[None, :-1])[0].float(), dim=-1)
    for t in range(1, tokens.numel()):
        prev = tokens[t - 1]
        counts[prev, tokens[t]] += 1
        row = counts[prev]
        mixed = (1 - lam) * probs[t - 1] + lam * row / row.sum()
        nll_sum -= math.log(mixed[tokens[t]].item())
    return nll_sum
