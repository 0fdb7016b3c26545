# The SLOT path of slot_illegal_delta.py behind a setting that is off unless the run sets SLOT_ENABLED:
# the scanner cannot see the official run's environment, so it asks for review.
# expect-verdict: needs_review
# expect-hit: slot review slot_before_scoring
import os

import torch
import torch.nn.functional as F


class Hyperparameters:
    slot_enabled = bool(int(os.environ.get("SLOT_ENABLED", "0")))
    slot_lr = float(os.environ.get("SLOT_LR", 3e-3))


def eval_val(args, model, val_tokens, seq_len):
    loss_sum = torch.zeros((), dtype=torch.float64)
    use_slot = getattr(args, "slot_enabled", False)
    for ws in range(0, val_tokens.numel() - seq_len, seq_len):
        x, y = val_tokens[ws:ws + seq_len][None], val_tokens[ws + 1:ws + seq_len + 1][None]
        if use_slot:
            hidden = model.forward_hidden(x).detach()
            delta = torch.zeros(1, 1, hidden.size(-1), requires_grad=True)
            opt = torch.optim.AdamW([delta], lr=args.slot_lr)
            opt.zero_grad()
            F.cross_entropy(model.compute_logits(hidden + delta)[0], y[0]).backward()
            opt.step()
            logits = model.compute_logits(hidden + delta.detach())
        else:
            with torch.inference_mode():
                logits = model.forward_logits(x)
        loss_sum += F.cross_entropy(logits[0], y[0], reduction="sum")
    return loss_sum
