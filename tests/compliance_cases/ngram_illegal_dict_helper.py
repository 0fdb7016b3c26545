# A per-position phrase cache behind a helper: the key is the n-gram ending at the scored token.
# expect-verdict: flag
# expect-hit: target_in_key flag target_in_key
import math

import torch


def lookup(cache, key):
    return cache.get(key, 0)


def eval_val_phrase(model, tokens, n=4, lam=0.2):
    cache = {}
    ctx_cache = {}
    nll_sum = 0.0
    probs = torch.softmax(model.forward_logits(tokens[None, :-1])[0].float(), dim=-1)
    for i in range(n, tokens.numel()):
        key = tuple(tokens[i - n + 1:i + 1].tolist())
        hits = lookup(cache, key)
        seen = ctx_cache.get(key[:-1], 0)
        p = (1 - lam) * probs[i - 1, tokens[i]] + lam * hits / max(seen, 1)
        nll_sum -= math.log(p)
        cache[key] = hits + 1
        ctx_cache[key[:-1]] = seen + 1
    return nll_sum
