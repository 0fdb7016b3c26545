# A per-window logit bias fitted only on the window's context positions [:s] (tokens earlier windows
# already scored), then applied to the new positions [s:]: score-first in substance.
# expect-verdict: clean_with_legal_ttt
# expect-hit: slot legal legal_context_only_fit
import torch
import torch.nn.functional as F


def eval_val_bias(model, val_tokens, seq_len, stride, vocab):
    loss_sum = torch.zeros((), dtype=torch.float64)
    bias = torch.zeros(vocab)
    for ws in range(0, val_tokens.numel() - seq_len, stride):
        chunk = val_tokens[ws:ws + seq_len + 1]
        x, y = chunk[:-1], chunk[1:]
        with torch.inference_mode():
            logits = model.forward_logits(x[None])[0].float()
        s = 0 if ws == 0 else seq_len - stride
        if s > 0:
            b = bias.clone().detach().requires_grad_(True)
            opt = torch.optim.SGD([b], lr=0.05)
            ctx_logits, ctx_tgt = logits[:s].detach(), y[:s]
            for _ in range(5):
                opt.zero_grad()
                loss = F.cross_entropy(ctx_logits + b, ctx_tgt)
                loss.backward()
                opt.step()
            bias = b.detach()
        scored = F.cross_entropy(logits[s:] + bias, y[s:], reduction="none")
        loss_sum += scored.sum()
    return loss_sum
