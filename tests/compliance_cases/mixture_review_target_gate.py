# A hint from the token stream tilts the score when the realised token equals it (a gate that reads
# the realised token, #1795): legal only if the tilted distribution is renormalised, which the
# scanner cannot check.
# expect-verdict: needs_review
# expect-hit: unnormalised_mixture review reads_realised_token
import torch
import torch.nn.functional as F


def eval_val_tilt(model, val_tokens, seq_len, beta=2.0):
    hints = torch.roll(val_tokens, 1)
    loss_sum = torch.zeros((), dtype=torch.float64)
    for ws in range(0, val_tokens.numel() - seq_len, seq_len):
        x, y = val_tokens[ws:ws + seq_len], val_tokens[ws + 1:ws + seq_len + 1]
        with torch.no_grad():
            nll = F.cross_entropy(model.forward_logits(x[None])[0].float(), y, reduction="none")
        is_hit = (y == hints[ws + 1:ws + seq_len + 1]).double()
        loss_sum += (nll - beta * is_hit).sum()
    return loss_sum
