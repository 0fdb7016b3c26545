"""The trusted sliding-window evaluator: scores a token stream with any "ids -> logits" function.

It knows only a logits function and the tokenizer's byte table (harness/data/bytes.py); everything
model-specific lives in harness/reproduce/worker/adapters.py. The semantics are the challenge's (the contract in the
helpers' brief, shared with reference_train/train_gpt.py):

- stream x[0..N-1]; the targets x[1..N-1] are each scored exactly once;
- window k starts at s = k*S (S = stride) and feeds x[s : s+l] with l = min(L, N-1-s) (L = window
  length, the model's sequence length); its targets are x[s+1 : s+l+1];
- window 0 scores all its l targets; window k > 0 only those after the previous window's last target
  ((k-1)*S + L), i.e. its last S for a full window, fewer for the final shorter one;
- windows are taken while the previous window's last target is < N-1.

The model never receives a target: the harness computes the log-softmax itself (fp32 or better) and
sums losses in float64, so the number it returns is causal and normalised by construction.

The logits function is called as `logits_fn(input_ids [B, T] int64, last_n)` and must return the
final logits (what the loss uses) of the last `last_n` positions, `[B, last_n, vocab]` (all T when
last_n is None). `last_n` lets a model skip the output head, and in its last block the queries and
MLP, for positions that are not scored: that is where most of the speed comes from.

`evaluate` is the fast path (batched windows gathered on the device, optional torch.compile, cuDNN
attention first, multi-process through torch.distributed when initialised); `evaluate_naive` is the
plain reference (one batch of windows at a time, full logits, float64 losses) the tests hold it to.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from dataclasses import asdict, dataclass
from typing import Any, Callable, Iterator, Optional

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from harness import rules

LogitsFn = Callable[[Tensor, Optional[int]], Tensor]

# compile="auto" in the worker compiles only from this many windows on: compilation costs about 25 s on
# an H200 and eager runs about 3.5x slower per token (bench/README.md), so they break even near 4-5 M
# tokens at stride 64; the example split (2,178 windows) is faster eager.
COMPILE_MIN_WINDOWS = 65_536
DEFAULT_BATCH_TOKENS = 256 * rules.DEFAULT_SEQ_LEN  # 256 windows of 1024: fills an H100 (measured: bench/README.md)


@dataclass
class EvalResult:
    val_loss: float  # nats per scored token
    val_bpb: float  # bits per UTF-8 byte of the scored text
    tokens: int  # scored tokens (N - 1)
    bytes: int  # UTF-8 bytes of the scored tokens
    windows: int
    wall_s: float
    seq_len: int
    stride: int
    loss_sum_nats: float = 0.0  # float64 sum of the per-token losses
    world_size: int = 1
    # Of wall_s, the seconds until the first batch of full windows was scored: with torch.compile mostly
    # the compilation, which a run pays once whatever the split's length (0 when no batch ran).
    warmup_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class WindowPlan:
    """Where each window starts, how long it is and how many of its last positions it scores."""

    num_tokens: int  # N, the stream's length (N - 1 targets)
    seq_len: int  # L
    stride: int  # S

    def __post_init__(self) -> None:
        if self.num_tokens < 2:
            raise ValueError(f"a stream needs at least 2 tokens to score one, got {self.num_tokens}")
        if not 1 <= self.stride <= self.seq_len:
            raise ValueError(f"stride must be in [1, seq_len={self.seq_len}], got {self.stride}")

    @property
    def num_targets(self) -> int:
        return self.num_tokens - 1

    @property
    def num_windows(self) -> int:
        # The last window is the first whose last target, min(k*S + L, N-1), reaches N-1.
        overhang = self.num_targets - self.seq_len
        return 1 if overhang <= 0 else 1 + math.ceil(overhang / self.stride)

    def start(self, k: int) -> int:
        return k * self.stride

    def length(self, k: int) -> int:
        return min(self.seq_len, self.num_targets - k * self.stride)

    def scored(self, k: int) -> int:
        # Window k > 0 follows a full window (a shorter one would have reached N-1), whose last
        # target is (k-1)*S + L; everything after it is new.
        length = self.length(k)
        return length if k == 0 else length - self.seq_len + self.stride

    def is_regular(self, k: int) -> bool:
        """A full window scoring exactly its last S positions: the batched, compiled case."""
        return self.length(k) == self.seq_len and self.scored(k) == self.stride

    def regular_range(self) -> tuple[int, int]:
        """Windows [lo, hi) that are regular: all but possibly the first and the last."""
        last = self.num_windows - 1
        lo = 0 if self.is_regular(0) else 1
        hi = last if not self.is_regular(last) else last + 1
        return lo, max(lo, hi)

    def rank_range(self, rank: int, world_size: int) -> tuple[int, int]:
        """Windows [lo, hi) of one rank: an even contiguous split."""
        return self.num_windows * rank // world_size, self.num_windows * (rank + 1) // world_size


def byte_luts(byte_table, device: torch.device | str) -> tuple[Tensor, Tensor, Tensor]:
    """A harness.bytes.ByteTable's arrays on the device: base bytes (int64), leading space, boundary."""
    base, space, boundary = byte_table.to_torch(device)
    return base.to(torch.int64), space, boundary


def target_bytes(targets: Tensor, previous: Tensor, luts: tuple[Tensor, Tensor, Tensor]) -> Tensor:
    """Bytes of each target given the token before it (harness/data/bytes.py's rule), int64."""
    base, space, boundary = luts
    return base[targets] + (space[targets] & ~boundary[previous]).to(torch.int64)


def token_losses(logits: Tensor, targets: Tensor) -> Tensor:
    """-log softmax(logits)[target] per position, in fp32 or better (float64 logits stay float64)."""
    if logits.dtype != torch.float64:
        logits = logits.float()
    picked = logits.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    return torch.logsumexp(logits, dim=-1) - picked


def _stream_tensor(tokens: Any) -> Tensor:
    """The stream as a 1-D int64 CPU tensor (accepts numpy arrays of any integer type, tensors, lists)."""
    if isinstance(tokens, Tensor):
        stream = tokens.detach().to("cpu")
    else:
        array = np.asarray(tokens)
        if array.dtype == np.uint16:  # torch has limited uint16 support; widen first
            array = array.astype(np.int32)
        stream = torch.from_numpy(np.ascontiguousarray(array))
    if stream.ndim != 1 or stream.dtype.is_floating_point:
        raise ValueError("the token stream must be a 1-D array of integer ids")
    return stream.to(torch.int64)


def _check_logits(logits: Tensor, batch: int, positions: int, vocab_needed: int) -> None:
    if logits.ndim != 3 or logits.shape[0] != batch or logits.shape[1] != positions:
        raise ValueError(
            f"logits function returned shape {tuple(logits.shape)}, expected [{batch}, {positions}, vocab]"
        )
    if logits.shape[2] < vocab_needed:
        raise ValueError(f"logits cover {logits.shape[2]} ids but the stream holds id {vocab_needed - 1}")


def _distributed() -> tuple[int, int]:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def join_process_group(device: str) -> tuple[str, int, int]:
    """Join the process group when started by torchrun (RANK set): NCCL with one GPU per process
    (LOCAL_RANK) for a CUDA device, gloo on the CPU. Returns (this process's device, rank, world
    size); without torchrun, (device, 0, 1)."""
    if "RANK" not in os.environ:
        return device, 0, 1
    if device.startswith("cuda"):
        device = f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"
        torch.cuda.set_device(device)
        torch.distributed.init_process_group("nccl", device_id=torch.device(device))
    else:
        torch.distributed.init_process_group("gloo")
    return (device, *_distributed())


def leave_process_group(wait_for_peers: bool = True) -> None:
    """Destroy the process group, if any, after a barrier that puts every rank past its last
    collective: gloo aborts a rank that tears down while its peer is still finishing (1 run in 4 on
    our CPU machine). A rank that failed passes wait_for_peers=False: its peers may never come."""
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return
    if wait_for_peers:
        torch.distributed.barrier()
    torch.distributed.destroy_process_group()


def _sdpa_context(device: torch.device):
    """Prefer cuDNN attention on CUDA (fastest measured on an H100: 359 vs 226 TFLOP/s for flash), falling back in order;
    on CPU nothing is forced."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    if device.type != "cuda":
        return contextlib.nullcontext()
    backends = [SDPBackend.CUDNN_ATTENTION, SDPBackend.FLASH_ATTENTION,
                SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH]
    try:
        return sdpa_kernel(backends, set_priority=True)
    except TypeError:  # torch without priorities: the list is only an allow-list there
        return sdpa_kernel(backends)


PLAIN_PROGRESS_EVERY_S = 30.0  # without a terminal (logs, the sandboxed worker): a line this often


@contextlib.contextmanager
def _progress(total: int, show: bool, label: str) -> Iterator[Callable[[int], None]]:
    """A rich progress bar with windows per second on a terminal; elsewhere a plain line every 30 s
    and one at the end (on stderr); nothing when hidden."""
    if not show:
        yield lambda advance: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    console = Console(stderr=True, highlight=False)
    if not console.is_terminal:
        started, last, done = time.monotonic(), [time.monotonic()], [0]

        def advance_plain(count: int) -> None:
            done[0] += count
            now = time.monotonic()
            if now - last[0] >= PLAIN_PROGRESS_EVERY_S or done[0] == total:
                last[0] = now
                rate = done[0] / max(now - started, 1e-9)
                console.print(f"{label}: {done[0]:,}/{total:,} windows ({rate:,.0f} windows/s)")

        yield advance_plain
        return
    columns = (
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("{task.fields[rate]} windows/s"), TimeRemainingColumn(),
    )
    with Progress(*columns, console=console) as progress:
        task = progress.add_task(label, total=total, rate="-")

        def advance(count: int) -> None:
            progress.advance(task, count)
            speed = progress.tasks[task].speed
            progress.update(task, rate=f"{speed:,.0f}" if speed else "-")

        yield advance


class _Sums:
    """Per-rank float64 loss sum and integer token/byte counts, kept on the device (no sync per batch)."""

    def __init__(self, device: torch.device) -> None:
        self.loss = torch.zeros((), dtype=torch.float64, device=device)
        self.bytes = torch.zeros((), dtype=torch.int64, device=device)
        self.tokens = 0

    def add(self, losses: Tensor, byte_counts: Tensor) -> None:
        self.loss += losses.to(torch.float64).sum()
        self.bytes += byte_counts.sum()
        self.tokens += losses.numel()

    def all_reduce(self) -> tuple[float, int, int]:
        tokens = torch.tensor(self.tokens, dtype=torch.int64, device=self.loss.device)
        if _distributed()[1] > 1:
            for value in (self.loss, self.bytes, tokens):
                torch.distributed.all_reduce(value, op=torch.distributed.ReduceOp.SUM)
        return float(self.loss.item()), int(self.bytes.item()), int(tokens.item())


def _result(sums: _Sums, plan: WindowPlan, start_time: float, world_size: int, warmup_s: float) -> EvalResult:
    loss_sum, byte_sum, token_sum = sums.all_reduce()
    if token_sum != plan.num_targets:  # would mean a planning bug: every target is scored once
        raise RuntimeError(f"scored {token_sum} tokens, expected {plan.num_targets}")
    return EvalResult(
        val_loss=loss_sum / token_sum,
        val_bpb=(loss_sum / math.log(2.0)) / byte_sum if byte_sum else float("nan"),
        tokens=token_sum, bytes=byte_sum, windows=plan.num_windows,
        wall_s=time.perf_counter() - start_time, seq_len=plan.seq_len, stride=plan.stride,
        loss_sum_nats=loss_sum, world_size=world_size, warmup_s=warmup_s,
    )


def evaluate(
    logits_fn: LogitsFn,
    tokens: Any,
    byte_table,
    *,
    seq_len: int = rules.DEFAULT_SEQ_LEN,
    stride: int = rules.EVAL_STRIDE,
    device: torch.device | str = "cpu",
    batch_tokens: int = DEFAULT_BATCH_TOKENS,
    compile: bool | str = False,
    progress: bool = False,
) -> EvalResult:
    """Score `tokens` with `logits_fn` by the sliding window; the fast, batched path.

    Full windows that score their last `stride` positions (all but the first and the final shorter
    one) run in batches of `batch_tokens // seq_len` windows, gathered by index arithmetic from a
    copy of the stream on the device; with `compile` (True, or a torch.compile mode such as
    "max-autotune-no-cudagraphs"), those batches (padded to one shape) go through torch.compile.
    Under torch.distributed (torchrun), each rank scores an even contiguous share of the windows and
    the sums are all-reduced, so every rank returns the same result.
    """
    device = torch.device(device)
    plan = WindowPlan(num_tokens=len(tokens), seq_len=seq_len, stride=stride)
    rank, world_size = _distributed()
    start_time = time.perf_counter()
    stream_cpu = _stream_tensor(tokens)
    vocab_needed = int(stream_cpu.max()) + 1
    stream = stream_cpu.to(torch.int32)
    if device.type == "cuda":
        stream = stream.pin_memory()
    stream = stream.to(device, non_blocking=True)
    luts = byte_luts(byte_table, device)
    if vocab_needed > luts[0].numel():
        raise ValueError(f"the stream holds id {vocab_needed - 1} but the byte table has {luts[0].numel()} entries")

    batch_windows = max(1, batch_tokens // seq_len)
    if compile:
        mode = compile if isinstance(compile, str) else None
        batched_fn = torch.compile(logits_fn, dynamic=False, mode=mode)
    else:
        batched_fn = logits_fn
    padded = bool(compile)  # one batch shape: one compile
    lo, hi = plan.rank_range(rank, world_size)
    regular_lo, regular_hi = plan.regular_range()
    regular_lo, regular_hi = max(lo, regular_lo), min(hi, regular_hi)
    if regular_lo >= regular_hi:  # this rank holds only first/last windows: score them one by one
        regular_lo = regular_hi = hi
    sums = _Sums(device)
    offsets = torch.arange(seq_len, device=device)

    def score_windows(fn: LogitsFn, first: int, count: int, rows: int, length: int, scored: int) -> None:
        """Score windows first..first+count-1 (all of one length and scored count); `rows` >= count
        pads the batch with copies of the last window so the compiled shape never changes."""
        window_ids = torch.arange(first, first + rows, device=device).clamp_(max=first + count - 1)
        starts = window_ids * stride
        inputs = stream[starts[:, None] + offsets[None, :length]].long()
        logits = fn(inputs, scored)
        _check_logits(logits, rows, scored, vocab_needed)
        positions = starts[:count, None] + (length - scored) + torch.arange(scored, device=device)[None, :]
        targets = stream[positions + 1].long()
        losses = token_losses(logits[:count], targets)
        sums.add(losses, target_bytes(targets, stream[positions].long(), luts))

    def score_single(k: int) -> None:
        score_windows(logits_fn, k, 1, 1, plan.length(k), plan.scored(k))

    with torch.inference_mode(), _sdpa_context(device), \
            _progress(hi - lo, progress and rank == 0, "evaluating") as advance:
        for k in range(lo, regular_lo):
            score_single(k)
            advance(1)
        warmup_s = 0.0
        for first in range(regular_lo, regular_hi, batch_windows):
            count = min(batch_windows, regular_hi - first)
            score_windows(batched_fn, first, count, batch_windows if padded else count, seq_len, stride)
            if first == regular_lo:
                if device.type == "cuda":
                    torch.cuda.synchronize(device)
                warmup_s = time.perf_counter() - start_time
            advance(count)
        for k in range(regular_hi, hi):
            score_single(k)
            advance(1)
        return _result(sums, plan, start_time, world_size, warmup_s)


def evaluate_naive(
    logits_fn: LogitsFn,
    tokens: Any,
    byte_table,
    *,
    seq_len: int = rules.DEFAULT_SEQ_LEN,
    stride: int = rules.EVAL_STRIDE,
    device: torch.device | str = "cpu",
    batch_windows: int = 1,
    progress: bool = False,
) -> EvalResult:
    """The plain reference: walk the windows in order, full logits for every position, float64 losses.

    It re-derives which targets to score from the rule itself (a target is new when its index is past
    the last one scored), not from WindowPlan. `batch_windows` > 1 batches consecutive windows of one
    length: the straightforward loop public records use, the baseline the benchmark compares with.
    """
    device = torch.device(device)
    stream = _stream_tensor(tokens).to(device)
    num_targets = stream.numel() - 1
    if num_targets < 1 or not 1 <= stride <= seq_len:
        raise ValueError(f"need >= 2 tokens and 1 <= stride <= seq_len, got {stream.numel()}, {stride}, {seq_len}")
    luts = byte_luts(byte_table, device)
    start_time = time.perf_counter()
    loss_sum = torch.zeros((), dtype=torch.float64, device=device)
    byte_sum = torch.zeros((), dtype=torch.int64, device=device)
    scored_count, window_count = 0, 0
    pending: list[tuple[int, int, int]] = []  # (start, length, first scored position in the window)

    def flush() -> None:
        nonlocal loss_sum, byte_sum, scored_count
        if not pending:
            return
        length = pending[0][1]
        inputs = torch.stack([stream[s : s + length] for s, _, _ in pending])
        targets = torch.stack([stream[s + 1 : s + length + 1] for s, _, _ in pending])
        logits = logits_fn(inputs, None).to(torch.float64)
        log_probs = F.log_softmax(logits, dim=-1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)
        mask = torch.zeros_like(targets, dtype=torch.bool)
        for row, (_, _, first_scored) in enumerate(pending):
            mask[row, first_scored:] = True
        loss_sum -= log_probs[mask].sum()
        byte_sum += target_bytes(targets[mask], inputs[mask], luts).sum()
        scored_count += int(mask.sum())
        pending.clear()

    with torch.inference_mode(), _progress(WindowPlan(stream.numel(), seq_len, stride).num_windows,
                                           progress, "naive") as advance:
        last_scored, start = 0, 0  # index of the last target scored so far (targets start at 1)
        while last_scored < num_targets:
            length = min(seq_len, num_targets - start)
            first_scored = max(0, last_scored - start)  # window position whose target index is last+1
            if pending and (len(pending) == batch_windows or pending[0][1] != length):
                flush()
            pending.append((start, length, first_scored))
            window_count += 1
            advance(1)
            last_scored, start = start + length, start + stride
        flush()
    total = float(loss_sum.item())
    byte_total = int(byte_sum.item())
    return EvalResult(
        val_loss=total / scored_count, val_bpb=(total / math.log(2.0)) / byte_total if byte_total else float("nan"),
        tokens=scored_count, bytes=byte_total, windows=window_count, wall_s=time.perf_counter() - start_time,
        seq_len=seq_len, stride=stride, loss_sum_nats=total,
    )
