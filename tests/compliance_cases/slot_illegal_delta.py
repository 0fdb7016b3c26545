# SLOT: a per-window delta on the hidden states is optimised on the window's own targets, then the
# window is scored with it.
# expect-verdict: flag
# expect-hit: slot flag slot_before_scoring
import torch
import torch.nn.functional as F


def eval_val_slot(model, val_tokens, seq_len, stride, steps=5):
    loss_sum = torch.zeros((), dtype=torch.float64)
    for ws in range(0, val_tokens.numel() - seq_len, stride):
        x = val_tokens[ws:ws + seq_len][None]
        y = val_tokens[ws + 1:ws + seq_len + 1][None]
        with torch.no_grad():
            hidden = model.forward_hidden(x)
        delta = torch.zeros(1, 1, hidden.size(-1), requires_grad=True)
        opt = torch.optim.AdamW([delta], lr=3e-3)
        for _ in range(steps):
            opt.zero_grad()
            F.cross_entropy(model.compute_logits(hidden + delta)[0], y[0]).backward()
            opt.step()
        with torch.no_grad():
            logits = model.compute_logits(hidden + delta)[0]
            s = 0 if ws == 0 else seq_len - stride
            loss_sum += F.cross_entropy(logits[s:], y[0, s:], reduction="sum")
    return loss_sum
