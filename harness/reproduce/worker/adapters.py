"""The worker half of re-evaluation: get logits out of an imported submission's model.

`build_model`, called by the worker (harness/reproduce/worker/__main__.py) after it imported the script,
finds a way to get logits out of the script's model:
  1. the documented hook: `load_eval_model(artifact_path, device)` returning a model with
     `eval_seq_len`, `vocab_size` and `forward_logits(input_ids, last_n=None)`;
  2. the auto-adapter for the baseline family (a `Hyperparameters` class, a `GPT` class and a
     `dequantize_*` function): GPT built from the hyperparameters by matching its constructor's
     parameter names, the artifact's compression told from its magic bytes (zlib, gzip, zstd, xz/lzma,
     brotli when installed, or a raw torch file) and decompressed under rules.MAX_DECOMPRESSED_BYTES,
     `torch.load(weights_only=True)`, dequantised by the script's own function, logits from
     `forward_logits` or captured from the cross-entropy call inside `forward(input_ids, target_ids)`,
     with the head on the scored positions only where a `final_norm` module allows it (ScoredPositions);
  3. otherwise `AdapterSkip`, which becomes a skip finding saying why no re-evaluation was possible.

The parent half (harness/reproduce/evaluation.py) runs the worker in the sandbox. Trust boundary,
stated plainly: the worker imports the untrusted script, so the script's code runs in the same process
as the evaluator there and could tamper with it (patch torch, the evaluator, the result file). The
sandbox keeps it away from the harness process, the network and our environment; the parent's
independent token and byte count catches a tampered denominator; but a hostile script could still fake
its own loss in the worker. That is why the static compliance scan and the black-box legality probe
exist beside this re-evaluation: this number is trustworthy for honest code, and the other two stages
are what catch dishonest code.
"""

from __future__ import annotations

import dataclasses
import inspect
import io
import lzma
import zlib
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from harness import rules

HOOK_NAME = "load_eval_model"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
XZ_MAGIC = b"\xfd7zXZ\x00"
GZIP_MAGIC = b"\x1f\x8b"
ZIP_MAGIC = b"PK\x03\x04"  # torch.save's default (zip) format


class AdapterSkip(Exception):
    """No way to get an independent model out of this submission; the message says why."""


# ---- worker side: artifacts -------------------------------------------------------------------------

def detect_compression(blob: bytes) -> str:
    """The artifact's container, from its first bytes: raw, zstd, xz, lzma, gzip, zlib or brotli."""
    if blob.startswith(ZIP_MAGIC) or blob[:1] == b"\x80":  # torch zip, or a legacy pickle
        return "raw"
    if blob.startswith(ZSTD_MAGIC):
        return "zstd"
    if blob.startswith(XZ_MAGIC):
        return "xz"
    if blob.startswith(GZIP_MAGIC):
        return "gzip"
    if len(blob) >= 2 and blob[0] & 0x0F == 8 and (blob[0] << 8 | blob[1]) % 31 == 0:
        return "zlib"
    if len(blob) >= 13 and blob[0] == 0x5D:
        return "lzma"  # the legacy .lzma header: properties byte 0x5D (lc=3 lp=0 pb=2), dictionary size, length
    return "brotli"  # brotli streams have no magic; tried last


def decompress_artifact(blob: bytes, limit: int = rules.MAX_DECOMPRESSED_BYTES) -> tuple[bytes, str]:
    """(decompressed bytes, format); AdapterSkip when the format is unknown, the data is corrupt, or it
    decompresses beyond `limit` bytes (a decompression bomb is refused, not expanded)."""
    kind = detect_compression(blob)
    try:
        raw = _DECOMPRESSORS[kind](blob, limit)
    except AdapterSkip:
        raise
    except Exception as error:  # corrupt data in any of the formats
        raise AdapterSkip(f"the artifact looks {kind}-compressed but does not decompress ({error})") from None
    if len(raw) > limit:
        raise AdapterSkip(f"the artifact decompresses beyond {limit:,} bytes; refused")
    return raw, kind


def _zlib(blob: bytes, limit: int, wbits: int = zlib.MAX_WBITS) -> bytes:
    decompressor = zlib.decompressobj(wbits)
    out = decompressor.decompress(blob, limit + 1)
    if len(out) <= limit and not decompressor.eof:
        raise ValueError("truncated stream")
    return out


def _zstd(blob: bytes, limit: int) -> bytes:
    import zstandard

    reader = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(blob))
    chunks, size = [], 0
    while size <= limit:
        chunk = reader.read(1 << 20)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def _lzma(blob: bytes, limit: int) -> bytes:
    decompressor = lzma.LZMADecompressor(lzma.FORMAT_AUTO)
    out = decompressor.decompress(blob, limit + 1)
    if len(out) <= limit and not decompressor.eof:
        raise ValueError("truncated stream")
    return out


def _brotli(blob: bytes, limit: int) -> bytes:
    try:
        import brotli
    except ImportError:
        raise AdapterSkip("the artifact is not zlib, gzip, zstd, xz/lzma or a raw torch file; it may be brotli, "
                          "but the brotli package is not installed (pip install brotli)") from None
    decompressor = brotli.Decompressor()
    try:
        out = decompressor.process(blob, output_buffer_limit=limit + 1)
    except TypeError:  # brotli before 1.1 has no output limit
        out = decompressor.process(blob)
    return out


_DECOMPRESSORS: dict[str, Callable[[bytes, int], bytes]] = {
    "raw": lambda blob, limit: blob, "zlib": _zlib, "gzip": lambda blob, limit: _zlib(blob, limit, 31),
    "zstd": _zstd, "xz": _lzma, "lzma": _lzma, "brotli": _brotli,
}


# ---- worker side: models ------------------------------------------------------------------------------

@dataclass
class ModelHandle:
    logits_fn: Callable  # (input_ids [B, T], last_n) -> logits [B, n, vocab]
    seq_len: int
    vocab_size: int
    adapter: str  # "hook" or "auto"
    notes: list[str] = field(default_factory=list)


def build_model(module: Any, artifact: str, device: str, seq_len: int | None = None, fp32: bool = False) -> ModelHandle:
    """The model of an imported submission module, by the hook, the auto-adapter, or AdapterSkip. With
    `fp32`, the auto-adapter runs the model without bf16 autocast (a hook's model keeps its own precision)."""
    if callable(getattr(module, HOOK_NAME, None)):
        return _from_hook(module, artifact, device, seq_len)
    missing = [name for name in ("Hyperparameters", "GPT") if not inspect.isclass(getattr(module, name, None))]
    if not _dequantizers(module):
        missing.append("dequantize_*")
    if missing:
        raise AdapterSkip(f"the script defines no {HOOK_NAME}(artifact_path, device) hook, and is not of the "
                          f"baseline family (no {', '.join(missing)})")
    return _auto(module, artifact, device, seq_len, fp32)


def _from_hook(module: Any, artifact: str, device: str, seq_len: int | None) -> ModelHandle:
    model = getattr(module, HOOK_NAME)(artifact, device)
    lacking = [name for name in ("eval_seq_len", "vocab_size", "forward_logits") if not hasattr(model, name)]
    if lacking:
        raise AdapterSkip(f"{HOOK_NAME} returned a model without {', '.join(lacking)} (see the hook's contract)")
    notes = [f"model from the script's {HOOK_NAME} hook"]
    return ModelHandle(logits_fn=lambda ids, n: model.forward_logits(ids, last_n=n),
                       seq_len=int(seq_len or model.eval_seq_len), vocab_size=int(model.vocab_size),
                       adapter="hook", notes=notes)


def _dequantizers(module: Any) -> list[Callable]:
    return [value for name, value in sorted(vars(module).items())
            if name.startswith("dequantize") and inspect.isfunction(value)]


def _hyperparameters(module: Any) -> Any:
    cls = module.Hyperparameters
    try:
        return cls()
    except TypeError:  # a namespace-style class whose fields are class attributes
        return cls


def construct_from_hyperparameters(gpt_class: type, hp: Any) -> tuple[Any, dict[str, Any]]:
    """GPT(**kwargs) with each constructor parameter taken from the hyperparameter of the same name,
    or its default; AdapterSkip naming the first parameter that has neither."""
    kwargs = {}
    for name, param in inspect.signature(gpt_class).parameters.items():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        if hasattr(hp, name):
            kwargs[name] = getattr(hp, name)
        elif param.default is param.empty:
            raise AdapterSkip(f"GPT's constructor parameter {name!r} has no Hyperparameters field of that name "
                              "and no default, so the model cannot be built without running the script's main()")
    return gpt_class(**kwargs), kwargs


def describe_model(module: Any) -> dict[str, Any]:
    """The smoke test's facts about an imported script's model, built untrained on the CPU: parameters,
    layers, width, vocabulary. The model is built from the script's Hyperparameters (baseline family), or
    from the config dataclass its GPT takes, filled from the environment by upper-case field names as
    reference_train does; AdapterSkip when neither fits."""
    if not inspect.isclass(getattr(module, "GPT", None)):
        raise AdapterSkip("the script has no GPT class to build an untrained model from")
    if inspect.isclass(getattr(module, "Hyperparameters", None)):
        hp = _hyperparameters(module)
        model, kwargs = construct_from_hyperparameters(module.GPT, hp)
    else:
        config = _config_from_env(module)
        model, kwargs, hp = module.GPT(config), dataclasses.asdict(config), config
    parameters = sum(int(t.numel()) for t in model.state_dict().values())
    blocks = getattr(model, "blocks", None)
    layers = len(blocks) if hasattr(blocks, "__len__") else kwargs.get("num_layers") or getattr(hp, "num_layers", None)
    return {"parameters": parameters, "layers": layers,
            "width": kwargs.get("model_dim") or getattr(hp, "model_dim", None),
            "vocab_size": kwargs.get("vocab_size") or getattr(hp, "vocab_size", None),
            "seq_len": getattr(hp, "eval_seq_len", None) or getattr(hp, "train_seq_len", None),
            "constructor_arguments": len(kwargs)}


def _config_from_env(module: Any) -> Any:
    """The one dataclass GPT's constructor takes, its fields from $FIELD_NAME where set, else defaults."""
    import os
    import typing

    try:
        hints = typing.get_type_hints(module.GPT.__init__, vars(module))
    except Exception:  # unresolvable annotations: the script's business, not a reason to crash
        hints = {}
    configs = [cls for name, cls in hints.items() if name != "return" and dataclasses.is_dataclass(cls)]
    if len(configs) != 1:
        raise AdapterSkip("the script has no Hyperparameters class, and GPT does not take one config dataclass")
    values = {}
    for item in dataclasses.fields(configs[0]):
        raw = os.environ.get(item.name.upper())
        if raw:
            kind = type(item.default)
            values[item.name] = raw.strip().lower() in ("1", "true", "yes", "on") if kind is bool else kind(raw)
    return configs[0](**values)


def load_state(module: Any, model: Any, raw: bytes) -> str:
    """Load the artifact's weights into `model` through the script's dequantiser; which one worked."""
    import torch

    try:
        obj = torch.load(io.BytesIO(raw), map_location="cpu", weights_only=True)
    except Exception as error:
        raise AdapterSkip(f"the decompressed artifact is not a torch.save payload loadable with "
                          f"weights_only=True ({type(error).__name__}: {str(error)[:200]})") from None
    template = {name: tensor.detach().cpu() for name, tensor in model.state_dict().items()}
    errors = []
    for dequantize in _dequantizers(module):
        try:
            state = _call_dequantizer(dequantize, obj, template)
            model.load_state_dict(state, strict=True)
            return dequantize.__name__
        except Exception as error:  # the next candidate may fit; say why each failed
            errors.append(f"{dequantize.__name__}: {type(error).__name__}: {str(error)[:150]}")
    if isinstance(obj, dict) and obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        try:
            model.load_state_dict(obj, strict=True)
            return "a plain state dict"
        except Exception as error:
            errors.append(f"plain state dict: {str(error)[:150]}")
    raise AdapterSkip("no dequantize_* function of the script turned the artifact into GPT's state dict: "
                      + "; ".join(errors))


def _call_dequantizer(dequantize: Callable, obj: Any, template: dict) -> dict:
    required = [p for p in inspect.signature(dequantize).parameters.values()
                if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if len(required) == 1:
        return dequantize(obj)
    if len(required) == 3 and isinstance(obj, dict) and {"w", "m"} <= obj.keys():
        return dequantize(obj["w"], obj["m"], template)  # the mixed-precision records' (result, meta, template)
    raise TypeError(f"unsupported signature {inspect.signature(dequantize)}")


def _auto(module: Any, artifact: str, device: str, seq_len: int | None, fp32: bool = False) -> ModelHandle:
    import torch

    hp = _hyperparameters(module)
    model, kwargs = construct_from_hyperparameters(module.GPT, hp)
    blob = Path(artifact).read_bytes()
    raw, kind = decompress_artifact(blob)
    used = load_state(module, model, raw)
    model = model.to(device).eval()
    window = seq_len or getattr(hp, "eval_seq_len", None) or getattr(hp, "train_seq_len", None) or rules.DEFAULT_SEQ_LEN
    vocab = int(kwargs.get("vocab_size") or getattr(hp, "vocab_size", 0) or model.state_dict()["tok_emb.weight"].shape[0])
    notes = [f"GPT built from Hyperparameters ({len(kwargs)} constructor arguments)",
             f"artifact: {kind}, dequantised by {used}"]
    # The baseline family evaluates under bf16 autocast on CUDA; in fp32 on the CPU, or when asked.
    bf16 = device.startswith("cuda") and not fp32
    notes.append("bf16 autocast, as the baseline's evaluation" if bf16 else "fp32 (no autocast, no TF32)")
    if callable(getattr(model, "forward_logits", None)):
        takes_last_n = "last_n" in inspect.signature(model.forward_logits).parameters
        if takes_last_n:
            notes.append("logits from GPT.forward_logits(last_n)")
            return ModelHandle(_with_autocast(lambda ids, n: model.forward_logits(ids, last_n=n), bf16),
                               int(window), vocab, "auto", notes)
        notes.append("logits from GPT.forward_logits")
        whole = model.forward_logits
    else:
        notes.append("logits captured from the cross-entropy call in GPT.forward")
        # torch.compile traces the patched cross_entropy call as one graph (its store is a side effect it
        # replays), so the captured path compiles too.
        whole = lambda ids: logits_from_forward(model, ids)  # noqa: E731
    slicer = ScoredPositions.attach(model)
    sliced = slicer.wrap(whole)
    notes.append(slicer.check(sliced, vocab, int(window), device))
    return ModelHandle(_with_autocast(sliced, bf16), int(window), vocab, "auto", notes)


def _with_autocast(fn: Callable, bf16: bool) -> Callable:
    """`fn` under bf16 autocast (the baseline family's evaluation precision), or as it is."""
    if not bf16:
        return fn
    import torch

    def autocast_fn(ids, n):
        with torch.autocast("cuda", dtype=torch.bfloat16):
            return fn(ids, n)

    return autocast_fn


class ScoredPositions:
    """The output head on the scored positions only, for models whose logits come from every position.

    A forward hook on the model's `final_norm` module hands the rest of the forward (the head, the
    softcap, the loss's reshapes) only the last n positions' hidden states, so the head's matmul and the
    logits' float copy shrink from a window's length to the stride (16x at 1024/64). That is sound only
    when nothing after the final norm mixes positions; `check` compares the sliced logits with the full
    ones on two random windows in fp32 before the evaluation, and the slicing stays off unless they
    agree. The hook changes which positions the script's code computes, never how: the evaluator still
    takes the log-softmax and the sums itself.
    """

    TOLERANCE = 1e-4  # relative to the logits' largest magnitude, in fp32 without TF32

    def __init__(self, norm: Any) -> None:
        self.norm = norm
        self.enabled = norm is not None
        self.last_n: int | None = None
        if norm is not None:
            norm.register_forward_hook(self._slice)

    @classmethod
    def attach(cls, model: Any) -> "ScoredPositions":
        import torch

        norm = getattr(model, "final_norm", None)
        return cls(norm if isinstance(norm, torch.nn.Module) else None)

    def _slice(self, module: Any, args: Any, output: Any) -> Any:
        n = self.last_n
        if n is None or getattr(output, "ndim", 0) != 3 or output.shape[1] <= n:
            return output
        return output[:, -n:]

    def wrap(self, whole: Callable) -> Callable:
        """`whole(ids)` -> logits of every position, as a logits_fn(ids, last_n) that slices when enabled."""

        def logits_fn(ids, n):
            self.last_n = n if self.enabled else None
            try:
                logits = whole(ids)
            finally:
                self.last_n = None
            return logits if n is None or logits.shape[1] == n else logits[:, -n:]

        return logits_fn

    def check(self, logits_fn: Callable, vocab: int, window: int, device: str) -> str:
        """Turn the slicing off unless it leaves the scored logits unchanged; the note that says which.
        `logits_fn` is `wrap`'s function, before any autocast: the comparison runs in fp32."""
        import torch

        if self.norm is None:
            return "head on every position (GPT has no final_norm module to slice the scored positions at)"
        n = min(rules.EVAL_STRIDE, max(1, window // 2))  # fewer positions than the window, or nothing is sliced
        ids = torch.randint(0, vocab, (2, window), generator=torch.Generator().manual_seed(0)).to(device)
        tf32 = torch.backends.cuda.matmul.allow_tf32
        torch.backends.cuda.matmul.allow_tf32 = False  # scripts often turn it on: compare in true fp32
        try:
            with torch.inference_mode():
                self.enabled = False
                full = logits_fn(ids, n).float()
                self.enabled = True
                sliced = logits_fn(ids, n).float()
            if sliced.shape != full.shape:
                raise ValueError(f"shape {tuple(sliced.shape)} instead of {tuple(full.shape)}")
            difference = float((sliced - full).abs().max() / full.abs().max().clamp_min(1.0))
        except Exception as error:  # the script's forward could not take the sliced hidden states
            self.enabled = False
            return f"head on every position (slicing at final_norm failed: {type(error).__name__}: {str(error)[:120]})"
        finally:
            torch.backends.cuda.matmul.allow_tf32 = tf32
        if not difference <= self.TOLERANCE:
            self.enabled = False
            return (f"head on every position (slicing at final_norm changed the logits by {difference:.1e} of "
                    "their scale: something after it mixes positions)")
        return f"head on the scored positions only (sliced at final_norm; equal to the full head to {difference:.1e} in fp32)"


@contextmanager
def _capturing_cross_entropy(store: dict):
    """Replace torch.nn.functional.cross_entropy by a recorder of its first argument (the logits)."""
    import torch.nn.functional as F

    original = F.cross_entropy

    def record(logits, target, *args, **kwargs):
        store.setdefault("logits", logits)
        return logits.new_zeros(())

    F.cross_entropy = record
    try:
        yield
    finally:
        F.cross_entropy = original


def logits_from_forward(model: Any, ids: Any) -> Any:
    """[B, positions, vocab] logits of `forward(input_ids, target_ids)` models that return only the loss:
    the tensor they hand to F.cross_entropy. Targets are dummies; the logits cannot depend on them unless
    the model cheats, and the evaluator computes the loss itself."""
    store: dict = {}
    with _capturing_cross_entropy(store):
        model(ids, ids.new_zeros(ids.shape))
    logits = store.get("logits")
    batch = ids.shape[0]
    if logits is None or logits.ndim < 2 or logits.numel() % (batch * logits.shape[-1]):
        raise AdapterSkip("GPT.forward made no F.cross_entropy call whose input could serve as the logits")
    # [batch * positions, vocab] or [batch, positions, vocab]; positions is the window's length, or the
    # scored positions when ScoredPositions sliced the hidden states.
    return logits.reshape(batch, -1, logits.shape[-1])
