# The ruled-illegal hashed n-gram cache (#779): the lookup key hashes the context together with the
# token being scored, and only the target's blended probability is scored.
# expect-verdict: flag
# expect-hit: target_in_key flag target_in_key
import math

import torch
import torch.nn.functional as F

TABLE = 1 << 22
PRIME = 1000003


def eval_val_ngram(model, val_tokens, seq_len, lam=0.3):
    full_counts = torch.zeros(TABLE)
    ctx_counts = torch.zeros(TABLE)
    nll_sum = 0.0
    for ws in range(0, val_tokens.numel() - seq_len, seq_len):
        chunk = val_tokens[ws:ws + seq_len + 1]
        x, y = chunk[:-1], chunk[1:]
        with torch.no_grad():
            p_model = F.softmax(model.forward_logits(x[None])[0].float(), dim=-1).gather(-1, y[:, None])[:, 0]
        ctx_hash = (x * PRIME) % TABLE
        full_key = (ctx_hash * PRIME + y) % TABLE
        p_ngram = full_counts[full_key] / ctx_counts[ctx_hash].clamp_min(1)
        nll_sum += -torch.log((1 - lam) * p_model + lam * p_ngram).sum().item()
        full_counts.index_add_(0, full_key, torch.ones_like(full_key, dtype=torch.float))
        ctx_counts.index_add_(0, ctx_hash, torch.ones_like(ctx_hash, dtype=torch.float))
    return nll_sum / math.log(2.0)
