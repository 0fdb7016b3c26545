# The target-in-key cache as a class: the key is built in one method, looked up in another.
# expect-verdict: flag
# expect-hit: target_in_key flag target_in_key
import torch
import torch.nn.functional as F


class HashedCache:
    def __init__(self, size):
        self.size = size
        self.full = torch.zeros(size)
        self.ctx = torch.zeros(size)

    def key(self, context, token):
        return (context * 31 + token) % self.size

    def boost(self, context, targets):
        return self.full[self.key(context, targets)] / self.ctx[context % self.size].clamp_min(1)

    def learn(self, context, targets):
        self.full.index_add_(0, self.key(context, targets), torch.ones(targets.numel()))
        self.ctx.index_add_(0, context % self.size, torch.ones(targets.numel()))


def eval_val(model, val_tokens, seq_len):
    cache = HashedCache(1 << 20)
    loss_sum = 0.0
    for ws in range(0, val_tokens.numel() - seq_len, seq_len):
        x = val_tokens[ws:ws + seq_len]
        y = val_tokens[ws + 1:ws + seq_len + 1]
        with torch.no_grad():
            p = F.softmax(model.forward_logits(x[None])[0], dim=-1).gather(-1, y[:, None])[:, 0]
        loss_sum += -torch.log(0.8 * p + 0.2 * cache.boost(x, y)).sum().item()
        cache.learn(x, y)
    return loss_sum
