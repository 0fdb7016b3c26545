"""Replay a logits function from CUDA graphs: one capture per input shape, then one launch per batch.

A forward of many kernels can leave the GPU waiting while the host issues launches; a captured graph
replays them all with one host call. (For bench/fused_model.py's forward on an H200 the host kept ahead:
0.13 ms idle in a 22 ms batch, 97.42 s per split with graphs against 96.95 s without; README. So the
evaluator leaves graphs off by default.) The function must be graph-safe: the same kernels on the same shapes every call, no
host synchronisation, no data-dependent host control flow, its own allocations only (they come from
the graph's memory pool). The evaluator's fast path feeds only full windows of one shape (padded), so
one capture serves the whole split.

The tensor a replay returns is the graph's own output buffer: the next replay overwrites it. Read it
(or enqueue the work that reads it) before calling again, as the evaluator does.
"""

from __future__ import annotations

from typing import Callable, Optional

import torch
from torch import Tensor

LogitsFn = Callable[[Tensor, Optional[int]], Tensor]


class GraphedLogits:
    """`fn(ids, last_n)` captured once per (ids shape, dtype, last_n) and replayed from then on."""

    def __init__(self, fn: LogitsFn, device: torch.device | str, warmup_calls: int = 2) -> None:
        device = torch.device(device)
        if device.type != "cuda":
            raise ValueError(f"CUDA graphs need a CUDA device, not {device}")
        self.fn, self.device, self.warmup_calls = fn, device, warmup_calls
        self.pool = torch.cuda.graph_pool_handle()  # one pool: captures of other shapes share memory
        self._graphs: dict[tuple, tuple[torch.cuda.CUDAGraph, Tensor, Tensor]] = {}

    @property
    def captures(self) -> int:
        return len(self._graphs)

    def _capture(self, ids: Tensor, last_n: Optional[int]) -> tuple[torch.cuda.CUDAGraph, Tensor, Tensor]:
        static_ids = ids.clone()
        # Warm-up on a side stream, as torch.cuda.graphs asks: compiles kernels, builds cuDNN plans and
        # lets lazy initialisation happen before capture, where it would be recorded or would fail.
        side = torch.cuda.Stream(self.device)
        side.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(side):
            for _ in range(self.warmup_calls):
                self.fn(static_ids, last_n)
        torch.cuda.current_stream(self.device).wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, pool=self.pool):
            static_out = self.fn(static_ids, last_n)
        return graph, static_ids, static_out

    def __call__(self, ids: Tensor, last_n: Optional[int] = None) -> Tensor:
        if not ids.is_cuda:
            raise ValueError(f"inputs on {ids.device}: the graphs replay on {self.device}")
        key = (tuple(ids.shape), ids.dtype, last_n)
        if key not in self._graphs:
            self._graphs[key] = self._capture(ids, last_n)
        graph, static_ids, static_out = self._graphs[key]
        static_ids.copy_(ids)
        graph.replay()
        return static_out
