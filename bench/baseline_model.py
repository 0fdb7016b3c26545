"""A model of the challenge baseline's shape for timing the evaluator (random weights, no training).

Shape as in the baseline: 9 blocks of width 512, 8 query / 4 KV heads (GQA) of dim 64, ReLU² MLP 2x,
RMSNorm without weights, RoPE, q/k RMS-normalised with a per-head gain, residual mix with the
embedding, U-net skips between the halves, tied embeddings, tanh soft-cap 30 on the logits.

`forward_logits(ids, last_n)` follows the evaluation hook's contract and does the work the evaluator's
speed rests on: with last_n set, the last block computes keys and values for every position but
queries, attention output and MLP only for the last `last_n` positions, and the output head and
soft-cap run only there. Written for this benchmark; it is not the challenge's code.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn


@dataclass(frozen=True)
class ModelShape:
    vocab_size: int = 1024
    num_layers: int = 9
    model_dim: int = 512
    num_heads: int = 8
    num_kv_heads: int = 4
    mlp_mult: int = 2
    seq_len: int = 1024
    logit_softcap: float = 30.0
    rope_base: float = 10000.0
    fused_qkv: bool = True  # one projection for q, k, v (the baseline's three weights, concatenated)

    @property
    def head_dim(self) -> int:
        return self.model_dim // self.num_heads

    def flops_per_window(self, length: int, scored: int, last_block_trick: bool) -> float:
        """Multiply-adds x2 of one window: projections, causal attention (half the square), and the
        output head on the scored positions. With the trick, the last block's queries, attention
        output and MLP run only for the scored positions."""
        dim, kv_dim, hidden = self.model_dim, self.num_kv_heads * self.head_dim, self.mlp_mult * self.model_dim
        q_proj_mlp = 2 * (2 * dim * dim + 2 * dim * hidden)  # q, out-projection, MLP up and down
        kv = 2 * 2 * dim * kv_dim
        causal_attention = 2 * 2 * dim * length * (length + 1) / 2  # QK^T and AV over the causal half
        full_block = length * (q_proj_mlp + kv) + causal_attention
        if last_block_trick:
            # keys/values for all positions; the rest for `scored` queries over the whole window
            last_block = length * kv + scored * q_proj_mlp + 2 * 2 * dim * scored * length
        else:
            last_block = full_block
        return (self.num_layers - 1) * full_block + last_block + scored * 2 * dim * self.vocab_size


def rotate(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    half = x.size(-1) // 2
    x1, x2 = x[..., :half], x[..., half:]
    return torch.cat((x1 * cos + x2 * sin, x2 * cos - x1 * sin), dim=-1)


class Attention(nn.Module):
    def __init__(self, shape: ModelShape) -> None:
        super().__init__()
        self.heads, self.kv_heads, self.head_dim = shape.num_heads, shape.num_kv_heads, shape.head_dim
        dim, kv_dim = shape.model_dim, shape.num_kv_heads * shape.head_dim
        self.fused = shape.fused_qkv
        # q, k, v weights stacked in one matrix: one GEMM reads the normalised input once.
        self.qkv = nn.Linear(dim, dim + 2 * kv_dim, bias=False)
        self.proj = nn.Linear(dim, dim, bias=False)
        self.q_gain = nn.Parameter(torch.full((shape.num_heads,), 1.5))

    def forward(self, x: Tensor, cos: Tensor, sin: Tensor, last_n: int | None) -> Tensor:
        batch, length, _ = x.shape
        q_dim, kv_dim = self.heads * self.head_dim, self.kv_heads * self.head_dim
        if last_n is None and self.fused:
            q, k, v = self.qkv(x).split((q_dim, kv_dim, kv_dim), dim=-1)
        else:  # queries only for the last n positions; keys and values for all
            weight = self.qkv.weight
            q = F.linear(x if last_n is None else x[:, -last_n:], weight[:q_dim])
            k, v = F.linear(x, weight[q_dim:]).split((kv_dim, kv_dim), dim=-1)
        n = q.shape[1]
        # Normalise and rotate in [batch, time, heads, dim] order and transpose only at the attention
        # call: q stays time-major in memory, so cuDNN writes its output time-major too and the
        # reshape before the out-projection needs no copy.
        q = q.reshape(batch, n, self.heads, self.head_dim)
        k = k.reshape(batch, length, self.kv_heads, self.head_dim)
        v = v.reshape(batch, length, self.kv_heads, self.head_dim).transpose(1, 2)
        q = rotate(F.rms_norm(q, (self.head_dim,)), cos[length - n : length, None], sin[length - n : length, None])
        k = rotate(F.rms_norm(k, (self.head_dim,)), cos[:length, None], sin[:length, None])
        q = (q * self.q_gain.to(q.dtype)[:, None]).transpose(1, 2)
        k = k.transpose(1, 2)
        if n == length:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
        else:
            # The last n queries sit at the end of the window: query i sees keys 0 .. length-n+i.
            visible = torch.ones(n, length, dtype=torch.bool, device=x.device).tril(diagonal=length - n)
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=visible, enable_gqa=True)
        return self.proj(y.transpose(1, 2).reshape(batch, n, -1))


class Block(nn.Module):
    def __init__(self, shape: ModelShape) -> None:
        super().__init__()
        dim = shape.model_dim
        self.attn = Attention(shape)
        self.fc = nn.Linear(dim, shape.mlp_mult * dim, bias=False)
        self.down = nn.Linear(shape.mlp_mult * dim, dim, bias=False)
        self.attn_scale = nn.Parameter(torch.ones(dim))
        self.mlp_scale = nn.Parameter(torch.ones(dim))
        self.resid_mix = nn.Parameter(torch.stack((torch.ones(dim), torch.zeros(dim))))

    def forward(self, x: Tensor, x0: Tensor, cos: Tensor, sin: Tensor, last_n: int | None = None) -> Tensor:
        mix = self.resid_mix.to(x.dtype)
        x = mix[0] * x + mix[1] * x0
        attended = self.attn(F.rms_norm(x, (x.size(-1),)), cos, sin, last_n)
        if last_n is not None:
            x = x[:, -last_n:]
        x = x + self.attn_scale.to(x.dtype) * attended
        hidden = torch.relu(self.fc(F.rms_norm(x, (x.size(-1),)))).square()
        return x + self.mlp_scale.to(x.dtype) * self.down(hidden)


class BaselineShapedGPT(nn.Module):
    def __init__(self, shape: ModelShape = ModelShape(), seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.shape = shape
        self.eval_seq_len, self.vocab_size = shape.seq_len, shape.vocab_size
        self.tok_emb = nn.Embedding(shape.vocab_size, shape.model_dim)
        nn.init.normal_(self.tok_emb.weight, std=0.05)
        self.blocks = nn.ModuleList(Block(shape) for _ in range(shape.num_layers))
        self.num_encoder = shape.num_layers // 2
        self.skip_weights = nn.Parameter(torch.ones(shape.num_layers - self.num_encoder, shape.model_dim))
        inv_freq = 1.0 / (shape.rope_base ** (torch.arange(0, shape.head_dim, 2, dtype=torch.float64) / shape.head_dim))
        angles = torch.outer(torch.arange(shape.seq_len, dtype=torch.float64), inv_freq)
        self.register_buffer("cos", angles.cos().float(), persistent=False)
        self.register_buffer("sin", angles.sin().float(), persistent=False)
        self.eval()

    def forward_logits(self, input_ids: Tensor, last_n: int | None = None) -> Tensor:
        x = self.tok_emb(input_ids)
        x = x0 = F.rms_norm(x, (x.size(-1),))
        cos, sin = self.cos.to(x.dtype), self.sin.to(x.dtype)
        skips = []
        for index, block in enumerate(self.blocks):
            if index >= self.num_encoder and skips:
                x = x + self.skip_weights[index - self.num_encoder].to(x.dtype) * skips.pop()
            is_last = index == len(self.blocks) - 1
            x = block(x, x0, cos, sin, last_n if is_last else None)
            if index < self.num_encoder:
                skips.append(x)
        x = F.rms_norm(x, (x.size(-1),))
        logits = F.linear(x, self.tok_emb.weight)
        logits = logits.to(torch.promote_types(logits.dtype, torch.float32))  # soft-cap in fp32 or better
        softcap = self.shape.logit_softcap
        return softcap * torch.tanh(logits / softcap)
