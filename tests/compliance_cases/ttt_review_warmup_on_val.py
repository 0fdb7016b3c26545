# A compile warm-up runs backward/step on real validation tokens with a throwaway adapter before the
# (legal) TTT evaluation: disputed, reviewed case by case (#1530, #677).
# expect-verdict: needs_review
# expect-hit: ttt_order review warmup_on_val
# expect-hit: ttt_order legal legal_score_first_ttt
import torch
import torch.nn.functional as F


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
    xw, yw = val_tokens[:1024][None], val_tokens[1:1025][None]
    model.forward_ttt(xw, yw, warm).mean().backward()
    warm_opt.step()
    del warm, warm_opt
    print(eval_val_ttt(model, val_tokens, 1024))
