# Score-first TTT run for several passes over the same validation stream: from the second pass on, the
# tokens scored were trained on in the pass before (single pass, R4.3.4; disputed as #1698).
# expect-verdict: needs_review
# expect-hit: ttt_order review multi_pass_scoring
import torch
import torch.nn.functional as F


def eval_val_ttt(model, val_tokens, seq_len, chunk_tokens, passes=2):
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3)
    for _ in range(passes):
        loss_sum = torch.zeros((), dtype=torch.float64)
        for ci in range((val_tokens.numel() - 1) // chunk_tokens):
            chunk = val_tokens[ci * chunk_tokens:(ci + 1) * chunk_tokens + 1]
            x, y = chunk[:-1].view(-1, seq_len), chunk[1:].view(-1, seq_len)
            with torch.no_grad():
                loss_sum += F.cross_entropy(model.forward_logits(x).flatten(0, 1), y.flatten(), reduction="sum")
            optimizer.zero_grad()
            model(x, y).backward()
            optimizer.step()
    return loss_sum
