# Scores chunk ci, then trains on chunk ci + 1, which is scored only in the next turn: the update
# uses tokens before they are scored even though each turn scores before it trains.
# expect-verdict: flag
# expect-hit: ttt_order flag ttt_before_scoring
import torch
import torch.nn.functional as F


def eval_val_ttt(model, val_tokens, seq_len, chunk_tokens):
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3)
    loss_sum = torch.zeros((), dtype=torch.float64)
    num_chunks = (val_tokens.numel() - 1) // chunk_tokens
    for ci in range(num_chunks):
        chunk = val_tokens[ci * chunk_tokens:(ci + 1) * chunk_tokens + 1]
        with torch.no_grad():
            loss_sum += F.cross_entropy(model.forward_logits(chunk[None, :-1])[0], chunk[1:], reduction="sum")
        if ci + 1 < num_chunks:
            upcoming = val_tokens[(ci + 1) * chunk_tokens:(ci + 2) * chunk_tokens + 1]
            optimizer.zero_grad()
            model(upcoming[:-1].view(-1, seq_len), upcoming[1:].view(-1, seq_len)).backward()
            optimizer.step()
    return loss_sum
