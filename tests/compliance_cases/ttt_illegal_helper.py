# The training step hides in a helper two calls deep; the eval loop calls it before scoring the chunk.
# expect-verdict: flag
# expect-hit: ttt_order flag ttt_before_scoring
import torch
import torch.nn.functional as F


def _loss(model, inputs, targets):
    return F.cross_entropy(model.forward_logits(inputs).flatten(0, 1), targets.flatten())


def _adapt(model, opt, inputs, targets):
    opt.zero_grad()
    _loss(model, inputs, targets).backward()
    opt.step()


def _refresh(model, opt, chunk, seq_len):
    _adapt(model, opt, chunk[:-1].view(-1, seq_len), chunk[1:].view(-1, seq_len))


def evaluate(model, val_tokens, seq_len=1024, chunk_tokens=65536):
    opt = torch.optim.SGD(model.parameters(), lr=3e-3)
    total_loss = 0.0
    for start in range(0, val_tokens.numel() - 1, chunk_tokens):
        chunk = val_tokens[start:start + chunk_tokens + 1]
        _refresh(model, opt, chunk, seq_len)
        with torch.inference_mode():
            total_loss += _loss(model, chunk[:-1].view(-1, seq_len), chunk[1:].view(-1, seq_len)).item()
    return total_loss
