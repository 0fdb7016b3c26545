# The optimizer class, backward() and step() are reached through aliases; training still precedes scoring.
# expect-verdict: flag
# expect-hit: ttt_order flag ttt_before_scoring
import torch
import torch.nn.functional as F
from torch.optim import SGD as Plain

Opt = Plain


def evaluate(net, val_tokens, seq_len):
    opt = Opt(net.parameters(), lr=0.01)
    advance = opt.step
    nll_sum = torch.zeros(())
    windows = val_tokens.unfold(0, seq_len + 1, seq_len)
    for w in range(windows.size(0)):
        window = windows[w]
        loss = F.cross_entropy(net.forward_logits(window[None, :-1])[0], window[1:])
        go = loss.backward
        go()
        advance()
        with torch.no_grad():
            nll_sum += F.cross_entropy(net.forward_logits(window[None, :-1])[0], window[1:], reduction="sum")
    return nll_sum
