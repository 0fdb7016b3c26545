# SLOT hidden in a helper: the delta is fitted with torch.autograd.grad on the window's targets and
# returned; the caller scores the same targets with it.
# expect-verdict: flag
# expect-hit: slot flag slot_before_scoring
import torch
import torch.nn.functional as F


def fit_delta(head, hidden, targets, steps=3, lr=1e-2):
    delta = torch.zeros_like(hidden[:1, :1], requires_grad=True)
    for _ in range(steps):
        loss = F.cross_entropy(head(hidden + delta).flatten(0, 1), targets.flatten())
        (grad,) = torch.autograd.grad(loss, [delta])
        delta = (delta - lr * grad).detach().requires_grad_(True)
    return delta.detach()


def evaluate(model, val_tokens, seq_len):
    nll_total = 0.0
    for ws in range(0, val_tokens.numel() - seq_len, seq_len):
        x, y = val_tokens[ws:ws + seq_len][None], val_tokens[ws + 1:ws + seq_len + 1][None]
        hidden = model.forward_hidden(x).detach()
        delta = fit_delta(model.lm_head, hidden, y)
        nll_total += F.cross_entropy(model.lm_head(hidden + delta).flatten(0, 1), y.flatten(), reduction="sum").item()
    return nll_total
