# Score-first TTT as in the accepted records: each chunk is scored under no_grad, then trained on.
# expect-verdict: clean_with_legal_ttt
# expect-hit: ttt_order legal legal_score_first_ttt
import math

import numpy as np
import torch
import torch.nn.functional as F


def load_validation_tokens(pattern):
    return torch.from_numpy(np.fromfile(pattern, dtype=np.uint16).astype(np.int64))


def eval_val_ttt(model, val_tokens, seq_len, chunk_tokens, lr):
    loss_sum = torch.zeros((), dtype=torch.float64)
    token_count = 0
    num_chunks = (val_tokens.numel() - 1) // chunk_tokens
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    for ci in range(num_chunks):
        start = ci * chunk_tokens
        chunk = val_tokens[start:start + chunk_tokens + 1]
        x, y = chunk[:-1].view(-1, seq_len), chunk[1:].view(-1, seq_len)
        with torch.no_grad():
            logits = model.forward_logits(x)
            nll = F.cross_entropy(logits.flatten(0, 1), y.flatten(), reduction="none")
            loss_sum += nll.sum()
            token_count += nll.numel()
        if ci == num_chunks - 1:
            continue
        optimizer.zero_grad()
        loss = model(x, y)
        loss.backward()
        optimizer.step()
    return (loss_sum / token_count).item() / math.log(2.0)


def main(model):
    val_tokens = load_validation_tokens("data/datasets/fineweb10B_sp1024/fineweb_val_000000.bin")
    print(f"ttt val_bpb:{eval_val_ttt(model, val_tokens, 1024, 32768, 0.002):.4f}")
