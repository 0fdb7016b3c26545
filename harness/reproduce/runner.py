"""Run a submission's train_gpt.py (or the reference trainer) once per seed, each in a fresh work dir.

Each seed gets `<out>/seed_<SEED>/`: a copy of the submission's code, and a `data/` tree laid out the
way the challenge's scripts expect (`data/datasets/<name>/`, `data/tokenizers/<model>`) made of
symlinks to the real dataset, never copies. The script runs through `harness.reproduce.sandbox.run_sandboxed`
with a scrubbed environment holding only what we set (SEED, RUN_ID, DATA_PATH, TOKENIZER_PATH,
VOCAB_SIZE and the user's KEY=VALUE pairs), under torchrun when more than one process is asked for,
under a time limit. Its log and artifact stay in the work dir; the outcome is written to
`<out>/seed_<SEED>.json`. A seed whose json says "ok" and whose artifact still exists is complete and
is not rerun unless forced; anything else (failed, or interrupted before its json was written) is
rerun from a clean work dir.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import sys
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Protocol

from harness import rules, stats
from harness.errors import UserError
from harness.submission.logs import parse_log
from harness.reproduce.limits import Limits, default_limits
from harness.reproduce.sandbox import run_sandboxed

REFERENCE_TRAINER_DIR = Path(__file__).resolve().parents[2] / "reference_train"
# Time a run needs beyond the challenge's training and evaluation budgets: interpreter and CUDA start,
# data loading, compilation warm-up, export. Harness policy, not the challenge's.
STARTUP_ALLOWANCE_S = 300.0
DEFAULT_TIMEOUT_S = rules.TRAIN_TIME_LIMIT_S + rules.EVAL_TIME_LIMIT_S + STARTUP_ALLOWANCE_S
# Variables the runner owns; a user may not set them through --env (seeds come from --seeds).
RUNNER_OWNED_ENV = ("SEED", "RUN_ID")
# What is not copied from a submission folder into a work dir: outputs of earlier runs and caches.
SKIPPED_DIRS = {"logs", "data", "__pycache__", ".git"}
SKIPPED_SUFFIXES = {".log", ".ptz", ".pt"}
ARTIFACT_PATTERNS = ("final_model*.ptz", "*.ptz", "final_model*.bin", "final_model*.xz", "final_model*.br")

OK, FAILED, TIMEOUT = "ok", "failed", "timeout"


@dataclass(frozen=True)
class RunPlan:
    """What to run for every seed, and where."""

    code_dir: Path  # folder holding the train_gpt.py to run (copied into every work dir)
    dataset_dir: Path  # folder of fineweb_train_*.bin / fineweb_val_*.bin shards
    tokenizer_path: Path  # SentencePiece model
    out_dir: Path  # run dir: seed_<SEED>/ work dirs and seed_<SEED>.json results
    nproc: int = 1
    env: dict[str, str] = field(default_factory=dict)  # the user's KEY=VALUE pairs for the script
    timeout_s: float = DEFAULT_TIMEOUT_S
    vocab_size: int | None = None  # None: read from the tokenizer
    extra_files: tuple[Path, ...] = ()  # copied beside the script in every work dir (e.g. the attention shim)
    limits: Limits | None = None  # None: harness policy (rules.SANDBOX_*) for timeout_s, CUDA or not as here

    @property
    def script(self) -> Path:
        return self.code_dir / rules.COUNTED_CODE_FILE


@dataclass
class SeedResult:
    """The outcome of one seed's run, as written to <out>/seed_<SEED>.json (paths relative to <out>)."""

    seed: int
    status: str  # OK, FAILED or TIMEOUT
    work_dir: str
    console_log: str  # everything the script printed (stdout and stderr)
    log: str | None = None  # the script's own log file (logs/<RUN_ID>.txt), None if it wrote none
    artifact: str | None = None
    artifact_bytes: int | None = None  # the compressed model file's size
    total_bytes_measured: int | None = None  # train_gpt.py + compressed model on disk (R1.1's artifact bytes)
    val_bpb: float | None = None
    val_loss: float | None = None
    metric: str | None = None  # which final line the score comes from, e.g. final_int8_zlib_roundtrip_exact
    steps: int | None = None
    train_time_ms: float | None = None
    bytes_total: int | None = None  # code + model as the log states it
    bytes_code: int | None = None  # code bytes as the log states it
    returncode: int | None = None
    wall_s: float = 0.0
    started_at: str = ""
    error: str | None = None
    tail: list[str] = field(default_factory=list)  # last lines printed, for failure reports
    command: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)  # what the runner set for the script
    hardware: str = ""
    network_isolated: bool = False  # the run had no network (a fresh network namespace)
    limits: dict[str, str] = field(default_factory=dict)  # each sandbox limit: how it was enforced, or why not
    limit: str | None = None  # the sandbox limit that stopped the run (memory, processes, output, ...), if one did
    reused: bool = False  # loaded from an earlier run, not rerun now (not written to json)

    @property
    def ok(self) -> bool:
        return self.status == OK

    def to_json(self) -> dict:
        data = asdict(self)
        data.pop("reused")
        return data

    @classmethod
    def from_json(cls, data: dict) -> SeedResult:
        known = {name for name in cls.__dataclass_fields__ if name != "reused"}
        return cls(**{key: value for key, value in data.items() if key in known})


class Reporter(Protocol):
    """What the caller sees of a multi-seed run (the CLI draws progress from these)."""

    def seed_started(self, seed: int, index: int, total: int) -> None: ...
    def seed_line(self, seed: int, line: str) -> None: ...
    def seed_finished(self, result: SeedResult) -> None: ...


def work_dir(out_dir: Path, seed: int) -> Path:
    return out_dir / f"seed_{seed}"


def result_path(out_dir: Path, seed: int) -> Path:
    return out_dir / f"seed_{seed}.json"


def run_id(seed: int) -> str:
    return f"seed_{seed}"


def load_result(out_dir: Path, seed: int) -> SeedResult | None:
    """The recorded result of `seed`, or None when there is none (never run, or interrupted)."""
    path = result_path(out_dir, seed)
    if not path.is_file():
        return None
    try:
        return SeedResult.from_json(json.loads(path.read_text(encoding="utf-8")))
    except (json.JSONDecodeError, TypeError):
        return None  # a torn or foreign file: the seed counts as not run


def completed_result(out_dir: Path, seed: int) -> SeedResult | None:
    """The result of `seed` if it completed: status ok and its artifact still on disk."""
    result = load_result(out_dir, seed)
    if result is None or not result.ok or result.artifact is None:
        return None
    return result if (out_dir / result.artifact).is_file() else None


def read_vocab_size(tokenizer_path: Path) -> int:
    import sentencepiece

    try:
        return int(sentencepiece.SentencePieceProcessor(model_file=str(tokenizer_path)).vocab_size())
    except (OSError, RuntimeError) as error:
        raise UserError(f"not a readable SentencePiece model ({error})", tokenizer_path) from None


def trainer_env(plan: RunPlan, seed: int, dataset_name: str) -> dict[str, str]:
    """The only variables the script gets besides the sandbox's inherited basics (PATH, CUDA, ...)."""
    env = {
        "SEED": str(seed),
        "RUN_ID": run_id(seed),
        "DATA_PATH": f"./data/datasets/{dataset_name}",
        "TOKENIZER_PATH": f"./data/tokenizers/{plan.tokenizer_path.name}",
    }
    if "VOCAB_SIZE" not in plan.env:
        vocab_size = plan.vocab_size if plan.vocab_size is not None else read_vocab_size(plan.tokenizer_path)
        env["VOCAB_SIZE"] = str(vocab_size)
    env.update(plan.env)
    return env


def trainer_command(plan: RunPlan) -> list[str]:
    """python train_gpt.py, or torchrun (found next to this interpreter) for several processes."""
    if plan.nproc <= 1:
        return [sys.executable, rules.COUNTED_CODE_FILE]
    return [sys.executable, "-m", "torch.distributed.run", "--standalone",
            f"--nproc_per_node={plan.nproc}", rules.COUNTED_CODE_FILE]


def prepare_work_dir(plan: RunPlan, seed: int) -> Path:
    """A clean work dir: the submission's code copied, the data linked where the script expects it."""
    directory = work_dir(plan.out_dir, seed)
    if directory.exists():
        shutil.rmtree(directory)  # symlinks inside are unlinked, their targets never touched
    copy_code(plan.code_dir, directory)
    for extra in plan.extra_files:
        shutil.copyfile(extra, directory / extra.name)
    datasets = directory / "data" / "datasets"
    tokenizers = directory / "data" / "tokenizers"
    datasets.mkdir(parents=True)
    tokenizers.mkdir(parents=True)
    (datasets / plan.dataset_dir.name).symlink_to(plan.dataset_dir.resolve(), target_is_directory=True)
    (tokenizers / plan.tokenizer_path.name).symlink_to(plan.tokenizer_path.resolve())
    return directory


def copy_code(source: Path, destination: Path) -> None:
    """A submission folder's code and files, without earlier runs' outputs, caches or symlinks."""
    shutil.copytree(source, destination, symlinks=False, ignore=_skip_outputs)


def _skip_outputs(folder: str, names: list[str]) -> set[str]:
    skipped = set()
    for name in names:
        path = Path(folder) / name
        if path.is_symlink():
            skipped.add(name)  # a submission's links may point anywhere; the runner links data itself
        elif path.is_dir() and name in SKIPPED_DIRS:
            skipped.add(name)
        elif path.is_file() and path.suffix in SKIPPED_SUFFIXES:
            skipped.add(name)
    return skipped


def find_artifact(directory: Path) -> Path | None:
    """The compressed model the script wrote in its work dir (the newest match of the usual names)."""
    for pattern in ARTIFACT_PATTERNS:
        matches = [path for path in directory.glob(pattern) if path.is_file()]
        if matches:
            return max(matches, key=lambda path: path.stat().st_mtime)
    return None


def describe_hardware(nproc: int) -> str:
    """What ran the seeds, in the words records use ("1x NVIDIA H100 80GB HBM3", "CPU x86_64, 2 cores")."""
    try:
        import torch

        if torch.cuda.is_available():
            return f"{nproc}x {torch.cuda.get_device_name(0)}"
    except ImportError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"CPU {_cpu_model()} ({cores} cores)"


def _cuda_available() -> bool:
    """Whether runs here may use CUDA (then RLIMIT_AS, which breaks CUDA, is not applied)."""
    try:
        import torch

        return torch.cuda.is_available()
    except ImportError:
        return False


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def run_seed(plan: RunPlan, seed: int, on_line: Callable[[str], None] | None = None,
             hardware: str = "") -> SeedResult:
    """Run one seed from scratch and record its result json (written last: its presence means done)."""
    result_path(plan.out_dir, seed).unlink(missing_ok=True)
    directory = prepare_work_dir(plan, seed)
    env = trainer_env(plan, seed, plan.dataset_dir.name)
    command = trainer_command(plan)
    started_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
    console_log = directory / "console.txt"
    limits = plan.limits or default_limits(plan.timeout_s, uses_cuda=_cuda_available())
    sandboxed = run_sandboxed(command, cwd=directory, timeout_s=plan.timeout_s, env=env,
                              log_path=console_log, on_line=on_line, limits=limits)
    result = SeedResult(
        seed=seed, status=OK, work_dir=_relative(directory, plan.out_dir),
        console_log=_relative(console_log, plan.out_dir), returncode=sandboxed.returncode,
        wall_s=round(sandboxed.wall_s, 3), started_at=started_at, tail=sandboxed.tail,
        command=command, env=env, hardware=hardware, network_isolated=sandboxed.network_isolated,
        limits=sandboxed.enforced, limit=sandboxed.limit,
    )
    script_log = directory / "logs" / f"{run_id(seed)}.txt"
    _fill_metrics(result, script_log if script_log.is_file() else console_log, plan.out_dir)
    artifact = find_artifact(directory)
    if artifact is not None:
        result.artifact = _relative(artifact, plan.out_dir)
        result.artifact_bytes = artifact.stat().st_size
        result.total_bytes_measured = result.artifact_bytes + (directory / rules.COUNTED_CODE_FILE).stat().st_size
    result.status, result.error = _outcome(sandboxed, result, plan.timeout_s)
    _write_json(result_path(plan.out_dir, seed), result.to_json())
    return result


def _fill_metrics(result: SeedResult, log_path: Path, out_dir: Path) -> None:
    """Final score and sizes from the script's log, through the harness's log parser."""
    if log_path.name != "console.txt":
        result.log = _relative(log_path, out_dir)
    parsed = parse_log(log_path)
    final = parsed.score()
    if final is not None:
        result.metric = final.mode + ("_exact" if final.exact else "")
        result.val_loss, result.val_bpb = final.val_loss, final.val_bpb
    result.steps, result.train_time_ms = parsed.last_step, parsed.train_time_ms
    result.bytes_total, result.bytes_code = parsed.total_bytes, parsed.code_bytes


def _outcome(sandboxed, result: SeedResult, timeout_s: float) -> tuple[str, str | None]:
    if sandboxed.sandbox_error:
        return FAILED, sandboxed.sandbox_error
    if sandboxed.timed_out:
        return TIMEOUT, f"killed after the time limit of {timeout_s:g} s"
    if sandboxed.limit is not None:
        return FAILED, sandboxed.limit_message
    if sandboxed.returncode != 0:
        return FAILED, f"exited with status {sandboxed.returncode}"
    if result.val_bpb is None:
        return FAILED, "finished but its log has no final val_bpb line"
    if result.artifact is None:
        return FAILED, "finished but wrote no artifact (final_model*.ptz) in its work dir"
    return OK, None


def run_seeds(plan: RunPlan, seeds: list[int], *, force: bool = False,
              reporter: Reporter | None = None) -> list[SeedResult]:
    """Every seed in order; completed ones are reused unless `force`; a failed seed never stops the rest."""
    check_out_dir(plan, force)
    hardware = describe_hardware(plan.nproc)
    results = []
    for index, seed in enumerate(seeds):
        previous = None if force else completed_result(plan.out_dir, seed)
        if previous is not None:
            previous.reused = True
            result = previous
        else:
            if reporter:
                reporter.seed_started(seed, index, len(seeds))
            on_line = (lambda line, seed=seed: reporter.seed_line(seed, line)) if reporter else None
            result = run_seed(plan, seed, on_line=on_line, hardware=hardware)
        if reporter:
            reporter.seed_finished(result)
        results.append(result)
    _write_json(plan.out_dir / "summary.json", summary_json(results))
    return results


def plan_fingerprint(plan: RunPlan) -> dict:
    """What makes two runs of a seed comparable: the script's bytes, the data, the settings."""
    return {
        "script_sha256": hashlib.sha256(plan.script.read_bytes()).hexdigest(),
        "dataset_dir": str(plan.dataset_dir),
        "tokenizer_path": str(plan.tokenizer_path),
        "nproc": plan.nproc,
        "env": dict(sorted(plan.env.items())),
    } | ({"extra_files": [path.name for path in plan.extra_files]} if plan.extra_files else {})


def refuse_out_dir_inside_code(code_dir: Path, out_dir: Path) -> None:
    """Every work dir is a copy of the code folder: a run dir inside it would be copied into itself."""
    if out_dir.resolve().is_relative_to(code_dir.resolve()):
        raise UserError("is inside the submission folder, which every run copies; choose another --out", out_dir)


def check_out_dir(plan: RunPlan, force: bool) -> None:
    """Refuse a run dir inside the code folder, and to mix runs of another configuration into `out_dir`
    (their seeds would be reused as ours)."""
    refuse_out_dir_inside_code(plan.code_dir, plan.out_dir)
    path = plan.out_dir / "plan.json"
    current = plan_fingerprint(plan)
    if path.is_file() and not force:
        try:
            previous = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError:
            previous = None
        if previous != current:
            changed = sorted(k for k in current if not isinstance(previous, dict) or previous.get(k) != current[k])
            raise UserError(f"holds runs of another configuration (differs in: {', '.join(changed)}); "
                            "choose another --out, or pass --force to rerun every seed here", plan.out_dir)
    plan.out_dir.mkdir(parents=True, exist_ok=True)
    _write_json(path, current)


@dataclass
class Spread:
    mean: float
    std: float | None  # sample standard deviation (n-1), as records report it; None for one value


def spread(values: list[float]) -> Spread | None:
    if not values:
        return None
    return Spread(stats.mean(values), stats.stdev(values) if len(values) > 1 else None)


def summary_json(results: list[SeedResult]) -> dict:
    done = [r for r in results if r.ok]
    summary = {"seeds": [r.seed for r in results], "completed": [r.seed for r in done],
               "failed": [r.seed for r in results if not r.ok]}
    for name in ("val_bpb", "val_loss"):
        numbers = spread([getattr(r, name) for r in done])
        summary[f"{name}_mean"] = numbers.mean if numbers else None
        summary[f"{name}_std"] = numbers.std if numbers else None
    return summary


def _relative(path: Path, base: Path) -> str:
    return os.path.relpath(path, base)


def _write_json(path: Path, data: dict) -> None:
    """Write-then-rename, so that a run interrupted mid-write leaves no half json behind."""
    temporary = path.with_suffix(".json.tmp")
    temporary.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    os.replace(temporary, path)
