# Plain sliding-window scoring: the model's own normalised distribution, nothing mixed in.
# expect-verdict: clean
import torch
import torch.nn.functional as F


def eval_val_sliding(model, val_tokens, seq_len, stride):
    loss_sum = torch.zeros((), dtype=torch.float64)
    for ws in range(0, val_tokens.numel() - seq_len, stride):
        x, y = val_tokens[ws:ws + seq_len], val_tokens[ws + 1:ws + seq_len + 1]
        s = 0 if ws == 0 else seq_len - stride
        with torch.no_grad():
            nll = F.cross_entropy(model.forward_logits(x[None])[0].float(), y, reduction="none")
        loss_sum += nll[s:].sum()
    return loss_sum
