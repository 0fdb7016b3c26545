"""Reference trainer for the Parameter Golf challenge: the challenge's baseline model, written anew.

One file, read top to bottom: configuration (every field an environment variable), data, model,
optimiser, training loop, export (int8 + zlib, or int6 + zstd), evaluation, and the evaluation hook
`load_eval_model` that lets other tools re-score the exported artifact. It runs on a CPU (tiny shapes
through the same variables) and on 1 to 8 GPUs under torchrun; see reference_train/README.md.
"""

import contextlib
import glob
import io
import math
import os
import subprocess
import sys
import time
import uuid
import zlib
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import sentencepiece as spm
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn

# -----------------------------------------------------------------------------
# Configuration: each field is read from the environment variable of the same name in capitals
# (MODEL_DIM=64 sets model_dim). The defaults are the challenge's baseline run.


def _from_env(cls):
    values = {}
    for f in fields(cls):
        raw = os.environ.get(f.name.upper())
        if raw is None or raw == "":
            continue
        kind = type(f.default)
        values[f.name] = raw.strip().lower() in ("1", "true", "yes", "on") if kind is bool else kind(raw)
    return cls(**values)


@dataclass(frozen=True)
class ModelConfig:
    """The model's shape; stored inside the artifact so that the evaluation hook needs only the file."""

    vocab_size: int = 1024
    num_layers: int = 9
    model_dim: int = 512
    num_heads: int = 8
    num_kv_heads: int = 4
    mlp_mult: int = 2
    rope_base: float = 10000.0
    logit_softcap: float = 30.0
    qk_gain_init: float = 1.5
    tied_embed_init_std: float = 0.005
    train_seq_len: int = 1024  # also the evaluation window of the hook


@dataclass(frozen=True)
class TrainConfig:
    data_path: str = "./data/datasets/fineweb10B_sp1024"
    tokenizer_path: str = "./data/tokenizers/fineweb_1024_bpe.model"
    run_id: str = ""  # empty: a fresh uuid
    seed: int = 1337
    # Length and batch. Tokens per step are split over ranks x grad_accum_steps, so the global batch is
    # the same for any GPU count. grad_accum_steps 0: the fewest micro-steps whose micro-batches hold at
    # most micro_batch_tokens per rank (8 GPUs: 1, as in the baseline; 1 GPU: 2, where the baseline's
    # 8 // WORLD_SIZE gives 8 smaller ones: the same sum, and larger products run faster; ~40 GiB peak).
    iterations: int = 20000
    train_batch_tokens: int = 524_288
    train_seq_len: int = 1024
    grad_accum_steps: int = 0
    micro_batch_tokens: int = 262_144
    warmup_steps: int = 20  # compile and warm kernels, then restore the initial state
    warmdown_iters: int = 1200  # linear decay to 0; estimated from the wall clock when capped
    max_wallclock_seconds: float = 600.0  # 0 disables the cap
    # Optimiser.
    tied_embed_lr: float = 0.05
    matrix_lr: float = 0.04
    scalar_lr: float = 0.04
    muon_momentum: float = 0.95
    muon_momentum_warmup_start: float = 0.85
    muon_momentum_warmup_steps: int = 500
    muon_backend_steps: int = 5
    beta1: float = 0.9
    beta2: float = 0.95
    adam_eps: float = 1e-8
    grad_clip_norm: float = 0.0
    # Logging and validation.
    val_batch_size: int = 524_288
    val_loss_every: int = 1000
    train_log_every: int = 200
    # Options beyond the baseline, all off by default.
    sliding_window_eval: bool = False  # final score with overlapping windows
    eval_stride: int = 64
    eval_batch_seqs: int = 256  # windows per batch in the sliding-window evaluation
    quant: str = "int8"  # "int8" (zlib level 9) or "int6" (zstd level 22; needs the zstandard package)
    fp16_embed: bool = False  # keep the tied embedding in fp16 instead of quantising it
    compile: bool = True  # torch.compile on CUDA (never on CPU)
    compile_tuning: bool = False  # inductor coordinate-descent tuning: faster steps, but over 5 min more compile on H100


# -----------------------------------------------------------------------------
# Data. A shard is 256 little-endian int32 (magic, version, token count, ...) then uint16 tokens.

SHARD_MAGIC, SHARD_VERSION, SHARD_HEADER_INTS = 20240520, 1, 256


def load_shard(path: Path) -> np.ndarray:
    header = np.fromfile(path, dtype="<i4", count=SHARD_HEADER_INTS)
    if header.size != SHARD_HEADER_INTS or header[0] != SHARD_MAGIC or header[1] != SHARD_VERSION:
        raise ValueError(f"{path}: not a shard (bad header)")
    count = int(header[2])
    if path.stat().st_size != 4 * SHARD_HEADER_INTS + 2 * count:
        raise ValueError(f"{path}: size does not match the {count} tokens its header announces")
    return np.fromfile(path, dtype="<u2", count=count, offset=4 * SHARD_HEADER_INTS)


def shard_paths(pattern: str) -> list[Path]:
    paths = [Path(p) for p in sorted(glob.glob(pattern))]
    if not paths:
        raise FileNotFoundError(f"no shards match {pattern}")
    return paths


class TokenStream:
    """The training shards read in order, wrapping around forever."""

    def __init__(self, pattern: str):
        self.paths = shard_paths(pattern)
        self.index, self.tokens, self.pos = 0, load_shard(self.paths[0]), 0

    def take(self, n: int) -> np.ndarray:
        parts = []
        while n > 0:
            if self.pos == len(self.tokens):
                self.index = (self.index + 1) % len(self.paths)
                self.tokens, self.pos = load_shard(self.paths[self.index]), 0
            k = min(n, len(self.tokens) - self.pos)
            parts.append(self.tokens[self.pos : self.pos + k])
            self.pos, n = self.pos + k, n - k
        return np.concatenate(parts)


class BatchLoader:
    """Each step takes one contiguous chunk of world x accum spans of (local tokens + 1); micro-step m
    of rank r gets span m * world + r, so a step sees the same tokens for any number of ranks."""

    def __init__(self, pattern, rank, world, accum, batch_tokens, seq_len, device):
        self.stream, self.rank, self.world, self.accum = TokenStream(pattern), rank, world, accum
        self.span, self.seq_len, self.device = batch_tokens // (world * accum) + 1, seq_len, device

    def next_batch(self) -> tuple[Tensor, Tensor]:
        chunk = self.stream.take(self.world * self.accum * self.span)
        mine = chunk.reshape(self.accum, self.world, self.span)[:, self.rank].astype(np.int64)
        spans = torch.from_numpy(mine)
        if self.device.type == "cuda":
            spans = spans.pin_memory().to(self.device, non_blocking=True)
        x = spans[:, :-1].reshape(self.accum, -1, self.seq_len).contiguous()
        y = spans[:, 1:].reshape(self.accum, -1, self.seq_len).contiguous()
        return x, y


def byte_tables(sp: spm.SentencePieceProcessor, vocab_size: int) -> tuple[Tensor, Tensor, Tensor]:
    """UTF-8 bytes of each piece without its leading '▁' (byte tokens 1, control/unknown/unused 0),
    whether it starts with '▁', and whether it is a boundary (control/unknown/unused) token."""
    size = max(int(sp.vocab_size()), vocab_size)
    base = np.zeros(size, dtype=np.int64)
    space = np.zeros(size, dtype=np.bool_)
    boundary = np.ones(size, dtype=np.bool_)
    for i in range(int(sp.vocab_size())):
        if sp.is_control(i) or sp.is_unknown(i) or sp.is_unused(i):
            continue
        boundary[i] = False
        if sp.is_byte(i):
            base[i] = 1
            continue
        piece = sp.id_to_piece(i)
        space[i] = piece.startswith("\u2581")
        base[i] = len(piece.removeprefix("\u2581").encode("utf-8"))
    return torch.from_numpy(base), torch.from_numpy(space), torch.from_numpy(boundary)


def target_bytes(x: Tensor, y: Tensor, tables: tuple[Tensor, Tensor, Tensor]) -> Tensor:
    """Bytes of each target y given the token x before it: the space counts unless x is a boundary."""
    base, space, boundary = tables
    return base[y] + (space[y] & ~boundary[x]).to(torch.int64)


# -----------------------------------------------------------------------------
# Model. Weights live in fp32; on CUDA the activations (the residual stream too) are bf16.


def _find_flash_attention():
    """FlashAttention 3 or 2 when installed: (name, function taking [B, T, H, D] q/k/v). Plain imports,
    so that a reader (and the compliance scanner) sees exactly which modules can be loaded."""
    try:
        from flash_attn_interface import flash_attn_func
        return "flash_attn_3", flash_attn_func
    except ImportError:
        pass
    try:
        from flash_attn import flash_attn_func
        return "flash_attn_2", flash_attn_func
    except ImportError:
        return None, None


FLASH_NAME, FLASH_FUNC = _find_flash_attention()


def attention(q: Tensor, k: Tensor, v: Tensor) -> Tensor:
    """Causal attention on [B, T, H, D] tensors (k/v may have fewer heads). With fewer queries than
    keys, the queries are the last positions: query i sees keys up to T_k - T_q + i."""
    n, t = q.size(1), k.size(1)
    if FLASH_FUNC is not None and q.is_cuda:
        out = FLASH_FUNC(q, k, v, causal=True)  # bottom-right aligned when n < t
        return out[0] if isinstance(out, tuple) else out
    qh, kh, vh = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
    gqa = q.size(2) != k.size(2)
    if n == t:
        y = F.scaled_dot_product_attention(qh, kh, vh, is_causal=True, enable_gqa=gqa)
    else:
        mask = torch.arange(t, device=q.device)[None, :] <= torch.arange(n, device=q.device)[:, None] + (t - n)
        y = F.scaled_dot_product_attention(qh, kh, vh, attn_mask=mask, enable_gqa=gqa)
    return y.transpose(1, 2)


def prefer_cudnn_attention():
    """SDPA backends in the order cuDNN, flash, memory-efficient, math: cuDNN is the fastest on H100
    (PERF_NOTES), and PyTorch's default order would pick flash, or even math for GQA, before it."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    order = [SDPBackend.CUDNN_ATTENTION, SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH]
    try:
        return sdpa_kernel(order, set_priority=True)
    except TypeError:  # a PyTorch without priorities: all four allowed, in its own order
        return sdpa_kernel(order)


def describe_attention(cfg: ModelConfig, device: torch.device) -> str:
    """Which attention kernel training uses, for the log."""
    if FLASH_FUNC is not None and device.type == "cuda":
        return FLASH_NAME
    if device.type != "cuda":
        return "sdpa_cpu"
    from torch.nn.attention import SDPBackend

    hd = cfg.model_dim // cfg.num_heads
    q = torch.zeros(1, cfg.num_heads, cfg.train_seq_len, hd, device=device, dtype=torch.bfloat16)
    kv = torch.zeros(1, cfg.num_kv_heads, cfg.train_seq_len, hd, device=device, dtype=torch.bfloat16)
    try:
        choice = torch._fused_sdp_choice(q, kv, kv, is_causal=True, enable_gqa=cfg.num_heads != cfg.num_kv_heads)
        return "sdpa_" + SDPBackend(choice).name.lower()
    except (AttributeError, RuntimeError, TypeError, ValueError):
        return "sdpa"


def rms_norm(x: Tensor) -> Tensor:
    return F.rms_norm(x, (x.size(-1),))


def rotate(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """RoPE on [B, T, H, D], rotating the two halves of each head; cos/sin are [T, D/2] fp32."""
    x1, x2 = x.float().chunk(2, dim=-1)
    c, s = cos[None, :, None, :], sin[None, :, None, :]
    return torch.cat((x1 * c + x2 * s, x2 * c - x1 * s), dim=-1).to(x.dtype)


class Linear(nn.Module):
    """A bias-free projection with an fp32 weight, cast to the activations' dtype when applied."""

    def __init__(self, d_in: int, d_out: int, zero_init: bool = False):
        super().__init__()
        bound = 0.0 if zero_init else 1.0 / math.sqrt(d_in)  # nn.Linear's default init, or zeros
        self.weight = nn.Parameter(torch.empty(d_out, d_in).uniform_(-bound, bound))

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight.to(x.dtype))


class Attention(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        if cfg.model_dim % cfg.num_heads or cfg.num_heads % cfg.num_kv_heads:
            raise ValueError("MODEL_DIM must divide by NUM_HEADS, and NUM_HEADS by NUM_KV_HEADS")
        self.num_heads, self.num_kv_heads = cfg.num_heads, cfg.num_kv_heads
        self.head_dim = cfg.model_dim // cfg.num_heads
        if self.head_dim % 2:
            raise ValueError("the head dimension must be even for RoPE")
        kv_dim = cfg.num_kv_heads * self.head_dim
        self.q, self.k, self.v = Linear(cfg.model_dim, cfg.model_dim), Linear(cfg.model_dim, kv_dim), Linear(cfg.model_dim, kv_dim)
        self.out = Linear(cfg.model_dim, cfg.model_dim, zero_init=True)
        self.q_gain = nn.Parameter(torch.full((cfg.num_heads,), cfg.qk_gain_init))
        inv_freq = 1.0 / cfg.rope_base ** (torch.arange(0, self.head_dim, 2, dtype=torch.float32) / self.head_dim)
        self.register_buffer("inv_freq", inv_freq, persistent=False)
        # Tables for the training length: computing cos/sin inside the fused kernels made them compute-bound.
        freqs = torch.outer(torch.arange(cfg.train_seq_len, dtype=torch.float32), inv_freq)
        self.register_buffer("rope_cos", freqs.cos(), persistent=False)
        self.register_buffer("rope_sin", freqs.sin(), persistent=False)

    def rope_tables(self, t: int, device: torch.device) -> tuple[Tensor, Tensor]:
        if t <= self.rope_cos.size(0):
            return self.rope_cos[:t], self.rope_sin[:t]
        freqs = torch.outer(torch.arange(t, device=device, dtype=torch.float32), self.inv_freq)
        return freqs.cos(), freqs.sin()

    def forward(self, x: Tensor, last_n: int | None = None) -> Tensor:
        b, t, d = x.shape
        n = t if last_n is None else last_n
        w = lambda *ms: torch.cat([m.weight for m in ms]).to(x.dtype)
        if last_n is None:  # one matrix product for q, k and v
            q, k, v = F.linear(x, w(self.q, self.k, self.v)).split([d, self.k.weight.size(0), self.v.weight.size(0)], -1)
        else:  # keys and values for every position, queries only for the last n
            q = F.linear(x[:, -n:], w(self.q))
            k, v = F.linear(x, w(self.k, self.v)).chunk(2, dim=-1)
        q = rms_norm(q.reshape(b, n, self.num_heads, self.head_dim))
        k = rms_norm(k.reshape(b, t, self.num_kv_heads, self.head_dim))
        v = v.reshape(b, t, self.num_kv_heads, self.head_dim)
        cos, sin = self.rope_tables(t, x.device)
        q = rotate(q, cos[t - n :], sin[t - n :]) * self.q_gain.to(x.dtype)[:, None]
        k = rotate(k, cos, sin)
        return self.out(attention(q, k, v).reshape(b, n, d))


class MLP(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.up = Linear(cfg.model_dim, cfg.mlp_mult * cfg.model_dim)
        self.down = Linear(cfg.mlp_mult * cfg.model_dim, cfg.model_dim, zero_init=True)

    def forward(self, x: Tensor) -> Tensor:
        return self.down(torch.relu(self.up(x)).square())


class Block(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.attn, self.mlp = Attention(cfg), MLP(cfg)
        self.attn_scale = nn.Parameter(torch.ones(cfg.model_dim))
        self.mlp_scale = nn.Parameter(torch.ones(cfg.model_dim))
        self.resid_mix = nn.Parameter(torch.stack((torch.ones(cfg.model_dim), torch.zeros(cfg.model_dim))))

    def forward(self, x: Tensor, x0: Tensor, last_n: int | None = None) -> Tensor:
        mix = self.resid_mix.to(x.dtype)
        x = mix[0] * x + mix[1] * x0
        attn_out = self.attn(rms_norm(x), last_n)
        if last_n is not None:
            x = x[:, -last_n:]
        x = x + self.attn_scale.to(x.dtype) * attn_out
        return x + self.mlp_scale.to(x.dtype) * self.mlp(rms_norm(x))


class GPT(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg, self.vocab_size, self.eval_seq_len = cfg, cfg.vocab_size, cfg.train_seq_len
        self.tok_emb = nn.Embedding(cfg.vocab_size, cfg.model_dim)
        nn.init.normal_(self.tok_emb.weight, std=cfg.tied_embed_init_std)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.num_layers))
        # U-Net: the first half's outputs feed the second half in reverse order, with learned weights.
        self.num_encoder = cfg.num_layers // 2
        self.skip_weights = nn.Parameter(torch.ones(min(self.num_encoder, cfg.num_layers - self.num_encoder), cfg.model_dim))

    def hidden(self, input_ids: Tensor, last_n: int | None = None) -> Tensor:
        """Final-normed hidden states; with last_n, the last block works only on the last n positions."""
        dtype = torch.bfloat16 if input_ids.is_cuda else torch.float32
        x = x0 = rms_norm(self.tok_emb(input_ids)).to(dtype)
        skips = []
        for i, block in enumerate(self.blocks):
            if i >= self.num_encoder and skips:
                x = x + self.skip_weights[i - self.num_encoder].to(dtype) * skips.pop()
            x = block(x, x0, last_n if i == len(self.blocks) - 1 else None)
            if i < self.num_encoder:
                skips.append(x)
        return rms_norm(x)

    def logits(self, h: Tensor) -> Tensor:
        """Tied output head, soft-capped by tanh, in fp32."""
        z = F.linear(h, self.tok_emb.weight.to(h.dtype)).float()
        return self.cfg.logit_softcap * torch.tanh(z / self.cfg.logit_softcap)

    def forward(self, input_ids: Tensor, target_ids: Tensor, reduction: str = "mean") -> Tensor:
        z = self.logits(self.hidden(input_ids))
        return F.cross_entropy(z.reshape(-1, z.size(-1)), target_ids.reshape(-1), reduction=reduction)

    def forward_logits(self, input_ids: Tensor, last_n: int | None = None) -> Tensor:
        """[B, n, vocab] logits (exactly what the loss uses) of the last n positions (all when None)."""
        if last_n is not None and not 1 <= last_n <= input_ids.size(1):
            raise ValueError(f"last_n must be in [1, {input_ids.size(1)}], got {last_n}")
        return self.logits(self.hidden(input_ids, None if last_n == input_ids.size(1) else last_n))


# -----------------------------------------------------------------------------
# Optimiser: Muon for the blocks' matrices (momentum, then the update orthogonalised by a quintic
# Newton-Schulz iteration in bf16, batched over matrices of one shape); Adam for everything else.


def newton_schulz(g: Tensor, steps: int) -> Tensor:
    a, b, c = 3.4445, -4.7750, 2.0315
    x = g.bfloat16()
    x = x / (x.norm(dim=(-2, -1), keepdim=True) + 1e-7)
    tall = x.size(-2) > x.size(-1)
    if tall:
        x = x.mT
    for _ in range(steps):
        s = x @ x.mT
        x = a * x + (b * s + c * (s @ s)) @ x
    return x.mT if tall else x


class Muon(torch.optim.Optimizer):
    def __init__(self, params, lr: float, momentum: float, backend_steps: int, orthogonalise=newton_schulz):
        super().__init__(params, dict(lr=lr, momentum=momentum, backend_steps=backend_steps))
        self.orthogonalise = orthogonalise

    @torch.no_grad()
    def step(self) -> None:
        for group in self.param_groups:
            by_shape: dict[tuple, list[Tensor]] = {}
            for p in group["params"]:
                if p.grad is not None:
                    by_shape.setdefault(tuple(p.shape), []).append(p)
            for shape, params in by_shape.items():
                grads = torch.stack([p.grad for p in params])
                state = self.state[params[0]]  # one stacked buffer per shape, kept on its first matrix
                if "momentum_buffer" not in state:
                    state["momentum_buffer"] = torch.zeros_like(grads)
                buf = state["momentum_buffer"]
                buf.mul_(group["momentum"]).add_(grads)
                update = self.orthogonalise(grads.add_(buf, alpha=group["momentum"]), group["backend_steps"])
                scale = max(1.0, shape[0] / shape[1]) ** 0.5
                torch._foreach_add_(params, list(update.float().unbind(0)), alpha=-group["lr"] * scale)


def build_optimisers(model: GPT, args: TrainConfig, on_cuda: bool):
    matrices = [m.weight for block in model.blocks for m in block.modules() if isinstance(m, Linear)]
    matrix_ids = {id(p) for p in matrices}
    scalars = [p for p in model.blocks.parameters() if id(p) not in matrix_ids] + [model.skip_weights]
    orthogonalise = torch.compile(newton_schulz, dynamic=False) if on_cuda and args.compile else newton_schulz
    muon = Muon(matrices, args.matrix_lr, args.muon_momentum, args.muon_backend_steps, orthogonalise)
    adam = torch.optim.Adam(
        [dict(params=[model.tok_emb.weight], lr=args.tied_embed_lr), dict(params=scalars, lr=args.scalar_lr)],
        betas=(args.beta1, args.beta2), eps=args.adam_eps, fused=on_cuda, foreach=not on_cuda,
    )
    for opt in (muon, adam):
        for group in opt.param_groups:
            group["base_lr"] = group["lr"]
    return muon, adam


# -----------------------------------------------------------------------------
# Export: matrices (float tensors over 65,536 elements) to int8 (or int6) with one fp16 scale per
# row, clipped at a high percentile of |w| per row; small and control tensors kept as floats.

SMALL_TENSOR_MAX_NUMEL = 65_536
CLIP_QUANTILE = 0.9999984
CONTROL_NAMES = ("attn_scale", "mlp_scale", "resid_mix", "q_gain", "skip_weights")
QUANT_LABELS = {"int8": ("int8+zlib", "int8_zlib", ".int8.ptz"), "int6": ("int6+zstd", "int6", ".int6.ptz")}
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


def quantize_rows(t: Tensor, levels: int) -> tuple[Tensor, Tensor]:
    rows = t.float().reshape(t.shape[0] if t.ndim > 1 else 1, -1)
    clip = torch.quantile(rows.abs(), CLIP_QUANTILE, dim=1)
    # The baseline's floor on the scale: rows of tiny weights share the resolution 1/levels.
    scale = (clip / levels).clamp_min(1.0 / levels).half()
    q = torch.round(torch.clamp(rows, -clip[:, None], clip[:, None]) / scale.float()[:, None])
    return q.clamp(-levels, levels).to(torch.int8), scale


def quantize_state(model: GPT, quant: str, fp16_embed: bool) -> tuple[dict, int]:
    levels = {"int8": 127, "int6": 31}[quant]
    out = {"format": "pgolf_reference_v1", "quant": quant, "config": asdict(model.cfg), "q": {}, "scale": {}, "shape": {}, "float": {}}
    payload = 0
    for name, t in model.state_dict().items():
        t = t.detach()
        if any(c in name for c in CONTROL_NAMES):
            out["float"][name] = t.float().cpu()
        elif t.numel() <= SMALL_TENSOR_MAX_NUMEL or (fp16_embed and name == "tok_emb.weight"):
            out["float"][name] = t.half().cpu()
        else:
            q, scale = quantize_rows(t, levels)
            out["q"][name], out["scale"][name], out["shape"][name] = q.cpu(), scale.cpu(), list(t.shape)
            payload += q.numel() * q.element_size() + scale.numel() * scale.element_size()
            continue
        payload += t.numel() * out["float"][name].element_size()
    return out, payload


def dequantize_state(obj: dict) -> dict[str, Tensor]:
    state = {name: t.float() for name, t in obj["float"].items()}
    for name, q in obj["q"].items():
        state[name] = (q.float() * obj["scale"][name].float()[:, None]).reshape(obj["shape"][name])
    return state


def compress(raw: bytes, quant: str) -> bytes:
    if quant == "int8":
        return zlib.compress(raw, level=9)
    try:
        import zstandard
    except ImportError:
        sys.exit("QUANT=int6 compresses with zstd: install the zstandard package (pip install zstandard)")
    return zstandard.ZstdCompressor(level=22).compress(raw)


def decompress(blob: bytes) -> bytes:
    if not blob.startswith(ZSTD_MAGIC):
        return zlib.decompress(blob)
    import zstandard

    return zstandard.ZstdDecompressor().decompress(blob)


def load_eval_model(artifact_path: str, device: str = "cpu") -> GPT:
    """The evaluation hook: the exported model, dequantised, in eval mode on `device`.

    The result has `eval_seq_len`, `vocab_size` and `forward_logits(input_ids, last_n=None)`."""
    obj = torch.load(io.BytesIO(decompress(Path(artifact_path).read_bytes())), map_location="cpu", weights_only=True)
    model = GPT(ModelConfig(**obj["config"]))
    model.load_state_dict(dequantize_state(obj), strict=True)
    return model.to(device).eval()


# -----------------------------------------------------------------------------
# Evaluation.


def all_sum(values: list[float], device: torch.device) -> list[float]:
    t = torch.tensor(values, dtype=torch.float64, device=device)
    if dist.is_initialized():
        dist.all_reduce(t)
    return t.tolist()


@torch.no_grad()
def eval_val(loss_fn, tokens: np.ndarray, seq_len: int, batch_seqs: int, tables, rank: int, world: int, device) -> tuple[float, float]:
    """Loss and bits per byte over consecutive windows of seq_len (the baseline's validation)."""
    num_seqs = (len(tokens) - 1) // seq_len
    lo, hi = num_seqs * rank // world, num_seqs * (rank + 1) // world
    loss_sum = token_count = byte_count = 0.0
    for start in range(lo, hi, batch_seqs):
        real = min(batch_seqs, hi - start)
        chunk = torch.from_numpy(tokens[start * seq_len : (start + real) * seq_len + 1].astype(np.int64)).to(device)
        x, y = chunk[:-1].reshape(real, seq_len), chunk[1:].reshape(real, seq_len)
        if real < batch_seqs:  # pad to one shape so a compiled model is not recompiled
            x, y = (torch.cat([t, t[:1].expand(batch_seqs - real, -1)]) for t in (x, y))
        losses = loss_fn(x, y, reduction="none").reshape(batch_seqs, seq_len)[:real]
        loss_sum += losses.double().sum().item()
        token_count += real * seq_len
        byte_count += target_bytes(x[:real], y[:real], tables).sum().item()
    loss_sum, token_count, byte_count = all_sum([loss_sum, token_count, byte_count], device)
    return loss_sum / token_count, loss_sum / math.log(2) / byte_count


@torch.no_grad()
def eval_sliding(model: GPT, logits_fn, tokens: np.ndarray, seq_len: int, stride: int, batch: int, tables, rank: int, world: int, device) -> tuple[float, float]:
    """Every target scored once, window k = x[k*S : k*S + L]: window 0 scores all its targets, each
    later one those after the previous window's last target (its last S, fewer for a short last one)."""
    if not 1 <= stride <= seq_len:
        raise ValueError(f"EVAL_STRIDE must be in [1, {seq_len}]")
    n_targets = len(tokens) - 1
    num_windows = 1 + max(0, math.ceil((n_targets - seq_len) / stride))
    length = lambda k: min(seq_len, n_targets - k * stride)
    scored = lambda k: length(k) if k == 0 else length(k) - seq_len + stride
    stream = torch.from_numpy(tokens.astype(np.int64)).to(device)
    lo, hi = num_windows * rank // world, num_windows * (rank + 1) // world
    sums = [0.0, 0.0]  # loss, bytes

    def score(starts: list[int], l: int, n: int, fn, pad: bool) -> None:
        idx = torch.tensor(starts, device=device)[:, None] + torch.arange(l + 1, device=device)
        window = stream[idx]
        x, y = window[:, :-1], window[:, -n:]
        real = len(starts)
        if pad and real < batch:  # one shape for the compiled function
            x = torch.cat([x, x[:1].expand(batch - real, -1)])
        z = fn(x, n)[:real]
        sums[0] += F.cross_entropy(z.reshape(-1, z.size(-1)).float(), y.reshape(-1), reduction="sum").double().item()
        sums[1] += target_bytes(window[:, -n - 1 : -1], y, tables).sum().item()

    # Only the first and the last window can be irregular (shorter, or scoring other than S targets).
    irregular = sorted({k for k in (lo, hi - 1) if lo < hi and (length(k) != seq_len or scored(k) != stride)})
    for k in irregular:
        score([k * stride], length(k), scored(k), model.forward_logits, pad=False)
    ks = [k for k in range(lo, hi) if k not in irregular]
    for i in range(0, len(ks), batch):
        score([k * stride for k in ks[i : i + batch]], seq_len, stride, logits_fn, pad=True)
    loss_sum, byte_count = all_sum(sums, device)
    return loss_sum / n_targets, loss_sum / math.log(2) / byte_count


# -----------------------------------------------------------------------------
# Training.


def micro_steps(args: TrainConfig, world: int) -> int:
    """Gradient-accumulation steps: GRAD_ACCUM_STEPS, or (0) the fewest that keep each rank's
    micro-batch within MICRO_BATCH_TOKENS."""
    return args.grad_accum_steps or max(1, -(-args.train_batch_tokens // (world * max(1, args.micro_batch_tokens))))


def main() -> None:
    code = Path(__file__).read_text(encoding="utf-8")
    args, mcfg = _from_env(TrainConfig), _from_env(ModelConfig)  # both read TRAIN_SEQ_LEN
    run_id = args.run_id or str(uuid.uuid4())

    distributed = "RANK" in os.environ and "WORLD_SIZE" in os.environ
    rank, world = int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    on_cuda = torch.cuda.is_available()
    device = torch.device("cuda", local_rank) if on_cuda else torch.device("cpu")
    if on_cuda:
        torch.cuda.set_device(device)
    else:  # tiny fp32 runs on CPU slow down ~5x on denormal floats; flushing them changes no score we log
        torch.set_flush_denormal(True)
    if distributed:
        dist.init_process_group(backend="nccl" if on_cuda else "gloo", device_id=device if on_cuda else None)
    accum = micro_steps(args, world)
    if accum <= 0 or args.train_batch_tokens % (world * accum * args.train_seq_len):
        sys.exit(f"TRAIN_BATCH_TOKENS={args.train_batch_tokens} must split into WORLD_SIZE={world} x "
                 f"GRAD_ACCUM_STEPS={accum or '?'} x whole sequences of TRAIN_SEQ_LEN={args.train_seq_len}")
    if args.quant not in QUANT_LABELS:
        sys.exit(f"QUANT must be one of {sorted(QUANT_LABELS)}, got {args.quant!r}")
    master = rank == 0
    use_compile = on_cuda and args.compile
    sync = torch.cuda.synchronize if on_cuda else (lambda: None)

    logfile = None
    if master:
        os.makedirs("logs", exist_ok=True)
        logfile = open(f"logs/{run_id}.txt", "a", encoding="utf-8")
        print(logfile.name)

    def log0(msg: str, console: bool = True) -> None:
        if master:
            if console:
                print(msg, flush=True)
            print(msg, file=logfile, flush=True)

    log0(code, console=False)
    log0("=" * 100, console=False)
    log0(f"Running Python {sys.version}", console=False)
    log0(f"Running PyTorch {torch.__version__}", console=False)
    if on_cuda:
        smi = subprocess.run(["nvidia-smi"], capture_output=True, text=True, check=False) if master else None
        log0(smi.stdout if smi else "", console=False)
    log0("=" * 100, console=False)

    # Tokenizer, byte tables and validation tokens.
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    sp = spm.SentencePieceProcessor(model_file=args.tokenizer_path)
    if int(sp.vocab_size()) != mcfg.vocab_size:
        sys.exit(f"VOCAB_SIZE={mcfg.vocab_size} does not match the tokenizer's {int(sp.vocab_size())} pieces")
    tables = tuple(t.to(device) for t in byte_tables(sp, mcfg.vocab_size))
    train_pattern = os.path.join(args.data_path, "fineweb_train_*.bin")
    val_pattern = os.path.join(args.data_path, "fineweb_val_*.bin")
    val_all = np.concatenate([load_shard(p) for p in shard_paths(val_pattern)])
    val_usable = (len(val_all) - 1) // args.train_seq_len * args.train_seq_len
    if val_usable <= 0:
        sys.exit(f"the validation split holds fewer than TRAIN_SEQ_LEN={args.train_seq_len} + 1 tokens")
    val_tokens = val_all[: val_usable + 1]
    log0(f"val_bpb:enabled tokenizer_kind=sentencepiece tokenizer_path={args.tokenizer_path}")
    log0(f"train_loader:dataset:{Path(args.data_path).resolve().name} train_shards:{len(shard_paths(train_pattern))}")
    log0(f"val_loader:shards pattern={val_pattern} tokens:{val_usable}")

    # Model (built on the CPU so that a seed gives the same weights on any device) and optimisers.
    held = contextlib.ExitStack()  # settings held for the whole run
    if on_cuda:
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        held.enter_context(prefer_cudnn_attention())
    if use_compile and args.compile_tuning:  # let inductor tune its elementwise and reduction kernels
        from torch._inductor import config as inductor_config

        inductor_config.coordinate_descent_tuning = True
    model = GPT(mcfg).to(device)
    train_model = torch.compile(model, dynamic=False, fullgraph=True) if use_compile else model
    muon, adam = build_optimisers(model, args, on_cuda)
    params = list(model.parameters())
    log0(f"model_params:{sum(p.numel() for p in params)}")
    log0(f"world_size:{world} grad_accum_steps:{accum}")
    log0(f"attention_backend:{describe_attention(mcfg, device)}")
    log0(f"attention_mode:gqa num_heads:{mcfg.num_heads} num_kv_heads:{mcfg.num_kv_heads}")
    log0(f"tie_embeddings:True embed_lr:{args.tied_embed_lr} head_lr:0.0 matrix_lr:{args.matrix_lr} scalar_lr:{args.scalar_lr}")
    log0(f"train_batch_tokens:{args.train_batch_tokens} train_seq_len:{args.train_seq_len} iterations:{args.iterations} "
         f"warmup_steps:{args.warmup_steps} max_wallclock_seconds:{args.max_wallclock_seconds:.3f}")
    log0(f"compile:{use_compile} compile_tuning:{use_compile and args.compile_tuning} device:{torch.cuda.get_device_name(device) if on_cuda else 'cpu'}")
    log0(f"seed:{args.seed}")

    cap_ms = 1000.0 * args.max_wallclock_seconds if args.max_wallclock_seconds > 0 else None

    def lr_scale(step: int, elapsed_ms: float) -> float:
        if args.warmdown_iters <= 0:
            return 1.0
        if cap_ms is None:
            return min(1.0, max(args.iterations - step, 0) / args.warmdown_iters)
        warmdown_ms = args.warmdown_iters * elapsed_ms / max(step, 1)
        remaining_ms = max(cap_ms - elapsed_ms, 0.0)
        return 1.0 if remaining_ms > warmdown_ms else remaining_ms / max(warmdown_ms, 1e-9)

    def train_step(loader: BatchLoader, step: int, scale: float) -> Tensor:
        xs, ys = loader.next_batch()
        loss_sum = torch.zeros((), device=device)
        for m in range(accum):
            loss = train_model(xs[m], ys[m])
            (loss / accum).backward()
            loss_sum += loss.detach()
        if distributed:  # one flat all-reduce of every gradient, averaged over ranks
            for p in params:  # a parameter the graph did not reach (e.g. skip weights of 1 layer)
                if p.grad is None:
                    p.grad = torch.zeros_like(p)
            flat = torch.cat([p.grad.reshape(-1) for p in params])
            dist.all_reduce(flat)
            flat /= world
            torch._foreach_copy_([p.grad for p in params], [g.view_as(p) for g, p in zip(flat.split([p.numel() for p in params]), params)])
        frac = min(step / args.muon_momentum_warmup_steps, 1.0) if args.muon_momentum_warmup_steps > 0 else 1.0
        for group in muon.param_groups:
            group["momentum"] = (1 - frac) * args.muon_momentum_warmup_start + frac * args.muon_momentum
        for opt in (muon, adam):
            for group in opt.param_groups:
                group["lr"] = group["base_lr"] * scale
        if args.grad_clip_norm > 0:
            torch.nn.utils.clip_grad_norm_(params, args.grad_clip_norm)
        muon.step()
        adam.step()
        for p in params:
            p.grad = None
        return loss_sum / accum

    def new_loader() -> BatchLoader:
        return BatchLoader(train_pattern, rank, world, accum, args.train_batch_tokens, args.train_seq_len, device)

    def validate() -> tuple[float, float]:
        batch_seqs = max(1, args.val_batch_size // (world * accum * args.train_seq_len))
        model.eval()
        result = eval_val(train_model, val_tokens, args.train_seq_len, batch_seqs, tables, rank, world, device)
        model.train()
        return result

    # Warm-up: compile and run the real step a few times, then restore the initial weights, the
    # optimisers' state and the data stream, so that the measured run starts from the true init.
    if args.warmup_steps > 0:
        initial = {k: v.detach().clone() for k, v in model.state_dict().items()}
        loader = new_loader()
        for i in range(args.warmup_steps):
            train_step(loader, i, 1.0)
            log0(f"warmup_step:{i + 1}/{args.warmup_steps}")
        model.load_state_dict(initial)
        muon.state.clear()
        adam.state.clear()
    loader = new_loader()

    training_time_ms, stop_after, step = 0.0, None, 0
    sync()
    t0 = time.perf_counter()
    while True:
        last = step == args.iterations or (stop_after is not None and step >= stop_after)
        if last or (args.val_loss_every > 0 and step % args.val_loss_every == 0):
            sync()
            training_time_ms += 1000.0 * (time.perf_counter() - t0)
            val_loss, val_bpb = validate()
            log0(f"step:{step}/{args.iterations} val_loss:{val_loss:.4f} val_bpb:{val_bpb:.4f} "
                 f"train_time:{training_time_ms:.0f}ms step_avg:{training_time_ms / max(step, 1):.2f}ms")
            sync()
            t0 = time.perf_counter()
        if last:
            if stop_after is not None and step < args.iterations:
                log0(f"stopping_early: wallclock_cap train_time:{training_time_ms:.0f}ms step:{step}/{args.iterations}")
            break
        train_loss = train_step(loader, step, lr_scale(step, training_time_ms + 1000.0 * (time.perf_counter() - t0)))
        step += 1
        approx_ms = training_time_ms + 1000.0 * (time.perf_counter() - t0)
        if args.train_log_every > 0 and (step <= 10 or step % args.train_log_every == 0 or stop_after is not None):
            if distributed:
                dist.all_reduce(train_loss)
                train_loss /= world
            log0(f"step:{step}/{args.iterations} train_loss:{train_loss.item():.4f} "
                 f"train_time:{approx_ms:.0f}ms step_avg:{approx_ms / step:.2f}ms")
        reached_cap = cap_ms is not None and approx_ms >= cap_ms
        if distributed and cap_ms is not None:  # ranks' clocks differ: stop together
            flag = torch.tensor(float(reached_cap), device=device)
            dist.all_reduce(flag, op=dist.ReduceOp.MAX)
            reached_cap = bool(flag.item())
        if stop_after is None and reached_cap:
            stop_after = step

    if on_cuda:
        log0(f"peak memory allocated: {torch.cuda.max_memory_allocated() // 2**20} MiB "
             f"reserved: {torch.cuda.max_memory_reserved() // 2**20} MiB")

    # Export, then score the model read back from the artifact: that number is the submission's.
    size_label, roundtrip_label, suffix = QUANT_LABELS[args.quant]
    artifact = "final_model" + suffix
    code_bytes = len(code.encode("utf-8"))
    if master:
        torch.save(model.state_dict(), "final_model.pt")
        raw_bytes = os.path.getsize("final_model.pt")
        log0(f"Serialized model: {raw_bytes} bytes")
        log0(f"Code size: {code_bytes} bytes")
        log0(f"Total submission size: {raw_bytes + code_bytes} bytes")
        obj, payload = quantize_state(model, args.quant, args.fp16_embed)
        buf = io.BytesIO()
        torch.save(obj, buf)
        blob = compress(buf.getvalue(), args.quant)
        Path(artifact).write_bytes(blob)
        log0(f"Serialized model {size_label}: {len(blob)} bytes (payload:{payload} raw_torch:{buf.tell()} "
             f"payload_ratio:{sum(t.numel() * 4 for t in params) / max(payload, 1):.2f}x)")
        log0(f"Total submission size {size_label}: {len(blob) + code_bytes} bytes")
    if distributed:
        dist.barrier()
    restored = load_eval_model(artifact, "cpu")
    model.load_state_dict(restored.state_dict(), strict=True)
    sync()
    t_eval = time.perf_counter()
    q_loss, q_bpb = validate()
    sync()
    log0(f"final_{roundtrip_label}_roundtrip val_loss:{q_loss:.4f} val_bpb:{q_bpb:.4f} "
         f"eval_time:{1000.0 * (time.perf_counter() - t_eval):.0f}ms")
    log0(f"final_{roundtrip_label}_roundtrip_exact val_loss:{q_loss:.8f} val_bpb:{q_bpb:.8f}")

    if args.sliding_window_eval:
        model.eval()
        logits_fn = torch.compile(model.forward_logits, dynamic=False) if use_compile else model.forward_logits
        sync()
        t_eval = time.perf_counter()
        s_loss, s_bpb = eval_sliding(model, logits_fn, val_all, args.train_seq_len, args.eval_stride,
                                     args.eval_batch_seqs, tables, rank, world, device)
        sync()
        log0(f"final_sliding_window val_loss:{s_loss:.4f} val_bpb:{s_bpb:.4f} stride:{args.eval_stride} "
             f"eval_seq_len:{args.train_seq_len} eval_time:{1000.0 * (time.perf_counter() - t_eval):.0f}ms")
        log0(f"final_sliding_window_exact val_loss:{s_loss:.8f} val_bpb:{s_bpb:.8f}")
    held.close()
    if distributed:
        dist.barrier()  # every rank done with every collective before any rank tears gloo/NCCL down
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
