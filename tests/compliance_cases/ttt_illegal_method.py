# A class method trains on the chunk (adapt) before another method scores it (score).
# expect-verdict: flag
# expect-hit: ttt_order flag ttt_before_scoring
import torch
import torch.nn.functional as F


class ChunkEvaluator:
    def __init__(self, model, lr):
        self.model = model
        self.opt = torch.optim.Adam(model.parameters(), lr=lr)

    def adapt(self, x, y):
        self.opt.zero_grad()
        F.cross_entropy(self.model.forward_logits(x).flatten(0, 1), y.flatten()).backward()
        self.opt.step()

    def score(self, x, y):
        with torch.no_grad():
            return F.cross_entropy(self.model.forward_logits(x).flatten(0, 1), y.flatten(), reduction="sum")

    def run(self, val_tokens, seq_len, chunk_tokens):
        loss_sum = torch.zeros((), dtype=torch.float64)
        for start in range(0, val_tokens.numel() - 1, chunk_tokens):
            chunk = val_tokens[start:start + chunk_tokens + 1]
            x, y = chunk[:-1].view(-1, seq_len), chunk[1:].view(-1, seq_len)
            self.adapt(x, y)
            loss_sum += self.score(x, y)
        return loss_sum
