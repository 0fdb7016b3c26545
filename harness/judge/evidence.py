"""What the judge is handed about one reproduced seed and about the hardware it ran on: plain numbers,
filled by the pipeline from the runner's results, the reproduced logs and the trusted re-evaluation."""

from __future__ import annotations

from dataclasses import dataclass, field

GIVEN = "given"  # SeedRun.status of an artifact judged without a reproduction (--skip-train)


@dataclass
class SeedRun:
    """One seed's reproduction: the run, its own log's numbers, the trusted number of its artifact."""

    seed: int
    status: str  # the runner's "ok", "failed" or "timeout"; "given" for an artifact given with --skip-train
    log: str  # the reproduced log (evidence path)
    error: str | None = None
    tail: list[str] = field(default_factory=list)
    artifact: str | None = None  # path of the rebuilt artifact
    artifact_bytes: int | None = None  # measured on disk
    code_bytes: int | None = None  # counted code bytes, measured
    logged_total_bytes: int | None = None  # code + model as the reproduced log states it
    own_val_bpb: float | None = None  # the script's own final number in the reproduced log
    own_val_loss: float | None = None
    own_mode: str | None = None  # its evaluation mode, e.g. final_int8_zlib_roundtrip, legal_ttt
    own_line: int | None = None
    base_val_bpb: float | None = None  # the log's last non-adaptive final number (before TTT/caches)
    base_mode: str | None = None
    adaptive: bool = False  # the own number comes from an evaluation-time method (TTT, caches)
    train_time_s: float | None = None  # the log's training-loop time
    eval_time_s: float | None = None  # the log's own final evaluations, summed
    wall_s: float | None = None  # the whole process, measured by the harness
    trusted_val_bpb: float | None = None
    trusted_val_loss: float | None = None
    trusted_tokens: int | None = None
    trusted_wall_s: float | None = None
    seq_len: int | None = None  # the trusted evaluator's window
    steps: int | None = None  # the reproduced log's last step
    val_token_count: int | None = None  # the validation split as the reproduced log states it
    dataset: str | None = None  # the dataset directory the reproduced log names

    @property
    def ok(self) -> bool:
        """A run that left an artifact to judge (reproduced, or given)."""
        return self.status in ("ok", GIVEN)

    @property
    def reproduced(self) -> bool:
        return self.status == "ok"

    @property
    def total_bytes(self) -> int | None:
        if self.artifact_bytes is None or self.code_bytes is None:
            return None
        return self.artifact_bytes + self.code_bytes


@dataclass
class Hardware:
    """What the runs ran on, and how its times project to the reference hardware (if they do)."""

    name: str  # e.g. "1x NVIDIA H200", "CPU AMD EPYC (2 cores)"
    nproc: int
    reference: bool  # 8xH100 SXM: the budgets can be checked as measured
    time_factor: float | None = None  # measured seconds x factor = projected seconds on the reference hardware
    factor_source: str = ""

    def project(self, seconds: float) -> float | None:
        return None if self.time_factor is None else seconds * self.time_factor
