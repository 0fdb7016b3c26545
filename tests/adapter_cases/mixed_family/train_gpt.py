"""A later-record-shaped script for the auto-adapter's tests (written for them): `GPT.forward_logits`
without a last_n parameter, a helper module imported from the script's own folder, and a mixed-precision
export {"w": result, "m": meta} undone by `dequantize_mixed(result, meta, template_sd)`, compressed
with zstd."""

import os

import torch
import torch.nn.functional as F
from torch import nn

from mixed_helpers import softcap  # a helper beside the script, as some records ship


class Hyperparameters:
    vocab_size = int(os.environ.get("VOCAB_SIZE", 320))
    model_dim = int(os.environ.get("MODEL_DIM", 24))
    eval_seq_len = int(os.environ.get("EVAL_SEQ_LEN", 24))
    kernel = int(os.environ.get("KERNEL", 5))
    seed = 5


class GPT(nn.Module):
    """A causal convolution language model: enough to be context-dependent and cheap."""

    def __init__(self, vocab_size: int, model_dim: int, kernel: int):
        super().__init__()
        self.kernel = kernel
        self.tok_emb = nn.Embedding(vocab_size, model_dim)
        self.conv = nn.Conv1d(model_dim, model_dim, kernel)
        self.head = nn.Linear(model_dim, vocab_size)

    def forward_logits(self, input_ids):
        x = self.tok_emb(input_ids).transpose(1, 2)
        x = torch.tanh(self.conv(F.pad(x, (self.kernel - 1, 0)))).transpose(1, 2)
        return softcap(self.head(x), 20.0)

    def forward(self, input_ids, target_ids):
        z = self.forward_logits(input_ids)
        return F.cross_entropy(z.reshape(-1, z.size(-1)), target_ids.reshape(-1))


def quantize_mixed(state):
    result, meta = {}, {}
    for name, t in state.items():
        if t.ndim >= 2:
            scale = t.abs().max().clamp_min(1e-8) / 31.0
            result[name], result[name + ".scale"] = torch.round(t / scale).to(torch.int8), scale
            meta[name] = "int6"
        else:
            result[name], meta[name] = t.half(), "fp16"
    return result, meta


def dequantize_mixed(result, meta, template_sd):
    out = {}
    for name, like in template_sd.items():
        if meta[name] == "int6":
            out[name] = (result[name].float() * result[name + ".scale"]).to(like.dtype)
        else:
            out[name] = result[name].to(like.dtype)
    return out


def build_model(args: Hyperparameters) -> GPT:
    torch.manual_seed(args.seed)
    return GPT(args.vocab_size, args.model_dim, args.kernel)
