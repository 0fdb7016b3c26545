"""A small script of the challenge baseline's family, for the auto-adapter's tests (written for them).

What the auto-adapter relies on is here in the baseline's shape: a `Hyperparameters` class read from the
environment, a `GPT` class whose constructor parameters are named like the hyperparameters (one with a
default the hyperparameters lack), `forward(input_ids, target_ids)` returning only the loss through
F.cross_entropy, no `forward_logits`, a `final_norm` module before the tied head, and int8 per-row quantisation undone by
`dequantize_state_dict_int8(obj)`, the artifact being torch.save + zlib. Running it writes an untrained
model's artifact (`python train_gpt.py` -> final_model.int8.ptz).
"""

import io
import os
import zlib

import torch
import torch.nn.functional as F
from torch import nn


class Hyperparameters:
    vocab_size = int(os.environ.get("VOCAB_SIZE", 320))
    num_layers = int(os.environ.get("NUM_LAYERS", 2))
    model_dim = int(os.environ.get("MODEL_DIM", 32))
    num_heads = int(os.environ.get("NUM_HEADS", 4))
    train_seq_len = int(os.environ.get("TRAIN_SEQ_LEN", 32))
    logit_softcap = float(os.environ.get("LOGIT_SOFTCAP", 15.0))
    seed = int(os.environ.get("SEED", 3))


class RMSNorm(nn.Module):
    def forward(self, x):
        return F.rms_norm(x, (x.size(-1),))


class Block(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.out = nn.Linear(dim, dim, bias=False)
        self.up = nn.Linear(dim, 2 * dim, bias=False)
        self.down = nn.Linear(2 * dim, dim, bias=False)

    def forward(self, x):
        b, t, d = x.shape
        q, k, v = self.qkv(F.rms_norm(x, (d,))).view(b, t, 3, self.heads, d // self.heads).unbind(2)
        y = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), is_causal=True)
        x = x + self.out(y.transpose(1, 2).reshape(b, t, d))
        return x + self.down(torch.relu(self.up(F.rms_norm(x, (d,)))).square())


class GPT(nn.Module):
    def __init__(self, vocab_size: int, num_layers: int, model_dim: int, num_heads: int, logit_softcap: float,
                 init_std: float = 0.5):
        super().__init__()
        self.logit_softcap = logit_softcap
        self.tok_emb = nn.Embedding(vocab_size, model_dim)
        nn.init.normal_(self.tok_emb.weight, std=init_std)
        self.blocks = nn.ModuleList(Block(model_dim, num_heads) for _ in range(num_layers))
        self.final_norm = RMSNorm()

    def logits(self, input_ids):
        x = self.tok_emb(input_ids)
        for block in self.blocks:
            x = block(x)
        z = F.linear(self.final_norm(x), self.tok_emb.weight)
        return self.logit_softcap * torch.tanh(z / self.logit_softcap)

    def forward(self, input_ids, target_ids):
        z = self.logits(input_ids)
        return F.cross_entropy(z.float().reshape(-1, z.size(-1)), target_ids.reshape(-1), reduction="mean")


def quantize_state_dict_int8(state):
    quantized, scales, passthrough = {}, {}, {}
    for name, t in state.items():
        if t.ndim == 2:
            scale = t.abs().amax(dim=1).clamp_min(1e-8) / 127.0
            quantized[name] = torch.round(t / scale[:, None]).to(torch.int8)
            scales[name] = scale.half()
        else:
            passthrough[name] = t.clone()
    return {"quantized": quantized, "scales": scales, "passthrough": passthrough}


def dequantize_state_dict_int8(obj):
    out = {name: q.float() * obj["scales"][name].float()[:, None] for name, q in obj["quantized"].items()}
    out.update(obj["passthrough"])
    return out


def build_model(args: Hyperparameters) -> GPT:
    torch.manual_seed(args.seed)
    return GPT(args.vocab_size, args.num_layers, args.model_dim, args.num_heads, args.logit_softcap)


def artifact_bytes(model: GPT) -> bytes:
    buffer = io.BytesIO()
    torch.save(quantize_state_dict_int8(model.state_dict()), buffer)
    return zlib.compress(buffer.getvalue(), level=9)


def main():
    model = build_model(Hyperparameters())
    with open("final_model.int8.ptz", "wb") as f:
        f.write(artifact_bytes(model))


if __name__ == "__main__":
    main()
