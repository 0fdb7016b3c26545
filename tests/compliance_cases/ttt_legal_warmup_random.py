# The same warm-up on random tokens (as the later records do): nothing of the validation set is used.
# expect-verdict: clean_with_legal_ttt
# expect-hit: ttt_order legal legal_score_first_ttt
import torch


class LoRA(torch.nn.Module):
    def __init__(self, dim, rank):
        super().__init__()
        self.a = torch.nn.Parameter(torch.zeros(dim, rank))


def eval_val_ttt(model, val_tokens, seq_len):
    lora = LoRA(512, 8)
    opt = torch.optim.Adam(lora.parameters(), lr=1e-3)
    loss_sum = torch.zeros((), dtype=torch.float64)
    for start in range(0, val_tokens.numel() - seq_len, seq_len):
        x = val_tokens[start:start + seq_len][None]
        y = val_tokens[start + 1:start + seq_len + 1][None]
        per_tok = model.forward_ttt(x, y, lora)
        with torch.no_grad():
            loss_sum += per_tok.sum()
        opt.zero_grad()
        per_tok.mean().backward()
        opt.step()
    return loss_sum


def main(model, val_tokens):
    warm = LoRA(512, 8)
    warm_opt = torch.optim.Adam(warm.parameters(), lr=1e-3)
    xw = torch.randint(0, 1024, (1, 1024))
    yw = torch.randint(0, 1024, (1, 1024))
    model.forward_ttt(xw, yw, warm).mean().backward()
    warm_opt.step()
    print(eval_val_ttt(model, val_tokens, 1024))
