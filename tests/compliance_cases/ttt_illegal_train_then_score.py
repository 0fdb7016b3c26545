# Trains on each chunk, then scores the same chunk: the update uses tokens before they are scored.
# expect-verdict: flag
# expect-hit: ttt_order flag ttt_before_scoring
import numpy as np
import torch
import torch.nn.functional as F


def eval_val_ttt(model, val_tokens, seq_len, chunk_tokens):
    loss_sum = torch.zeros((), dtype=torch.float64)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    for ci in range((val_tokens.numel() - 1) // chunk_tokens):
        chunk = val_tokens[ci * chunk_tokens:(ci + 1) * chunk_tokens + 1]
        x, y = chunk[:-1].view(-1, seq_len), chunk[1:].view(-1, seq_len)
        optimizer.zero_grad()
        model(x, y).backward()
        optimizer.step()
        with torch.no_grad():
            logits = model.forward_logits(x)
            loss_sum += F.cross_entropy(logits.flatten(0, 1), y.flatten(), reduction="sum")
    return loss_sum.item()


def main(model):
    val_tokens = torch.from_numpy(np.fromfile("data/fineweb_val_000000.bin", dtype=np.uint16).astype(np.int64))
    print(eval_val_ttt(model, val_tokens, 1024, 32768))
