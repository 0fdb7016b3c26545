# Scores chunk ci, then trains on the whole validation stream: later chunks are trained on before scored.
# expect-verdict: flag
# expect-hit: ttt_order flag ttt_before_scoring
import torch
import torch.nn.functional as F


def eval_val_ttt(model, val_tokens, seq_len, chunk_tokens):
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)
    loss_sum = torch.zeros((), dtype=torch.float64)
    everything = val_tokens[: (val_tokens.numel() - 1) // seq_len * seq_len + 1]
    for ci in range((val_tokens.numel() - 1) // chunk_tokens):
        chunk = val_tokens[ci * chunk_tokens:(ci + 1) * chunk_tokens + 1]
        with torch.no_grad():
            loss_sum += F.cross_entropy(model.forward_logits(chunk[None, :-1])[0], chunk[1:], reduction="sum")
        opt.zero_grad()
        model(everything[:-1].view(-1, seq_len), everything[1:].view(-1, seq_len)).backward()
        opt.step()
    return loss_sum
