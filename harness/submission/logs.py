"""Parse train logs of every format seen in accepted records into a `RunLog` (plain data).

`parse_log` never raises: a log may be empty, binary, tens of MB, not UTF-8, with Windows line endings,
ANSI colour codes, torchrun warnings or interleaved rank output. Unknown lines are ignored; what could
not be read is said in `RunLog.problems`.

Format families found in the accepted records (../shared/fixtures/records, 2026-03 to 2026-04):
- "baseline": the challenge's train_gpt.py logger and its descendants: `step:N/T train_loss:X
  train_time:Nms step_avg:Nms`, `step:N/T val_loss:X val_bpb:X ...`, `world_size:N grad_accum_steps:N`,
  `val_loader:shards pattern=... tokens:N`, `Serialized model int8+zlib: N bytes`,
  `final_int8_zlib_roundtrip[_exact] val_loss:X val_bpb:X`, and later eval modes in the same style
  (`final_int6_sliding_window`, `legal_ttt`, `final_ttt_lora`, ...). The file may start with the
  script's source followed by a line of 100 '=' (the logger writes the code first).
- "hparams": the 2026-04 rewrite: a `Hyperparameters:` block of `  key: value` lines between lines of
  '=', optionally a `Source code:` block, `val_tokens: N`, `N/T train_loss: X train_time: Xm tok/s: N`,
  `N/T val_loss: X val_bpb: X`, `quantized`, `quantized_sliding_window`, `quantized_ttt_phased`,
  `diagnostic ...` lines; some runs prefix every line with a Unix timestamp.
- "compact": the ternary/binary/XNOR scripts: `--- Hyperparameters ---` then `key=value` pairs,
  `params:N ... ws:N ga:N s:SEED`, `step:N/T loss:X t:Nms avg:Nms`, `budget:N/CAP`,
  `final_ternary_roundtrip`, `final_sliding val_loss:X val_bpb:X (stride=S, T=x) eval_time:Nms`.
- "unknown": none of the above (summaries, custom loggers); whatever final metric lines it has are
  still read.

Hyperparameters a log prints before training (a `Hyperparameters:` block, `key=value` dumps, lines of
`key:value` pairs) are kept as `RunLog.settings`, as printed: what the run had in force, for telling
configurations apart and for seeing which off-by-default paths a run enabled.

Which final metric is "the score" of a log: `RunLog.score()` is the last non-diagnostic evaluation line
of the log (the script's last word on the final model: roundtrip, then sliding window, then test-time
training). Diagnostic evaluations (`diagnostic ...`, `DIAGNOSTIC ...`, pre-quantisation and post-EMA
ones) are kept in `metrics` but never the score. `claims.py` prefers the mode that matches the
submission's claim and says which one it used.
"""

from __future__ import annotations

import math
import re
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path

from harness.rules import MAX_FILE_BYTES
from harness.submission.folder import LOG, Submission

SEPARATOR = "=" * 100  # the baseline logger's separator after the embedded source

_NUM = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|nan|NaN|inf|-inf"
_ANSI = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[@-Z\\-_])")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# Prefixes some launchers put before every line: a Unix timestamp, torchrun's --tee tag, a clock.
_PREFIX = re.compile(r"^(?:\d{10}\.\d+\s+|\[(?:default|rank)\d+\]:\s?|\[\d\d:\d\d:\d\d\]\s+)")
_PY_START = re.compile(r"^(?:#!|\"\"\"|'''|\"|'|from \w|import \w|#)")
_PY_BODY = re.compile(r"^(?:def |class |import |from \w+ import )", re.M)

_STEP_TRAIN = re.compile(
    rf"^step:(\d+)/(\d+)\s+(?:\[[^\]]*\]\s+)?(?:train_)?loss:\s*({_NUM})\b.*?\b(?:train_time|t):\s*({_NUM})ms"
    rf"(?:\s+(?:step_)?avg:\s*({_NUM})ms)?"
)
_STEP_TRAIN_MIN = re.compile(rf"^(\d+)/(\d+)\s+train_loss:\s*({_NUM})\s+train_time:\s*({_NUM})m\b")
_STEP_VAL = re.compile(
    rf"^step:(\d+)/(\d+)\s+val_loss:\s*({_NUM})\s+val_bpb:\s*({_NUM})(?:.*?\btrain_time:\s*({_NUM})ms)?"
)
_STEP_VAL_BARE = re.compile(rf"^(\d+)/(\d+)\s+val_loss:\s*({_NUM})\s+val_bpb:\s*({_NUM})")
_METRIC = re.compile(
    rf"^(?P<label>[A-Za-z][\w+\-./: ]*?)\s+(?:stride:(?P<stride>\d+)\s+)?(?P<sliding>sliding\s+)?"
    rf"val_loss[:=]\s*(?P<loss>{_NUM})\s+(?:sliding\s+)?val_bpb[:=]\s*(?P<bpb>{_NUM})(?P<rest>.*)$"
)
_EVAL_TIME = re.compile(rf"\b(?:eval_time|time)[:=]\s*({_NUM})ms|\belapsed[:=]\s*({_NUM})s")
_STRIDE = re.compile(r"\bstride[:=](\d+)")
_STOP = re.compile(rf"^stopping_early:\s*(\w+)\s+train_time:\s*({_NUM})ms(?:\s+step:\s*(\d+)/(\d+))?")
_PEAK = re.compile(r"^peak memory(?: allocated)?:\s*(\d+)\s*MiB(?:\s+reserved:\s*(\d+)\s*MiB)?")
_RAW_MODEL = re.compile(r"^Serialized model:\s*(\d+) bytes")
_MODEL = re.compile(r"^Serialized model ([^:\s]+):\s*(\d+) bytes")
_CODE = re.compile(r"^Code size(?: \((compressed|uncompressed)\))?:\s*(\d+) bytes")
_TOTAL = re.compile(r"^Total submission size(?: ([^:\s]+))?:\s*(\d+) bytes")
_RAW_TOTAL = re.compile(r"^Raw model:\s*(\d+) bytes \| Code:\s*(\d+) bytes")
_MODEL_TOTAL = re.compile(r"^(\S+) model:\s*(\d+) bytes \| Total submission:\s*(\d+) bytes")
_COMPACT_ARTIFACT = re.compile(r"^artifact:\S+\s.*\bcode:(\d+)")
_COMPACT_BUDGET = re.compile(r"^budget:(\d+)/(\d+)\b")
_WORLD = re.compile(r"^\s*world_size:\s*(\d+)\b")
_NPROC = re.compile(r"--nproc[_-]per[_-]node[= ](\d+)")
_COMPACT_PARAMS = re.compile(r"(?:^|\s)params:(\d[\d,]*)\b.*?\bws:(\d+)\b(?:.*?\bs:(\d+)\s*$)?")
_SEED = re.compile(r"^\s*seed:\s*(\d+)\s*$")
_KV_SEED = re.compile(r"(?:^|\s)seed=(\d+)(?:\s|$)")
_PARAMS = re.compile(r"^(?:model_params|params):\s*(\d+)\b")
_DATASET = re.compile(r"^train_loader:dataset:(\S+)")
_VAL_LOADER = re.compile(r"^val_loader:shards pattern=(\S+) tokens:\s*(\d+)")
_VAL_TOKENS = re.compile(r"^(?:val_tokens|val tokens):\s*(\d+)\s*$")
_DATA_DIR = re.compile(r"^\s*(?:datasets_dir|data_path):\s*(\S+)")
_KV_DATA = re.compile(r"(?:^|\s)data_path=(\S+)")
_TOKENIZER = re.compile(r"(?:^|\s)tokenizer_path(?:=|:\s*)([^\s=]+)(?=\s|$)")
_TOKENIZER_KIND = re.compile(r"tokenizer_kind=(\w+)")
_VOCAB = re.compile(r"(?:^\s*vocab_size:\s*|(?:^|\s)vocab_size=)(\d+)\b")
_GPU = re.compile(r"^\|\s+(\d+)\s+(NVIDIA [^|]*?|Tesla [^|]*?)\s+(?:On|Off)\s+\|")
_HPARAM_LINE = re.compile(r"^  ([A-Za-z_][\w.]*): (.*)$")
_KV_TOKEN = re.compile(r"(?:^|\s)([A-Za-z_][\w.]*)[:=](\S+)")

DIAGNOSTIC_MARKERS = ("diagnostic", "pre-quant", "pre_quant", "prequant", "post_ema", "post-ema")


@dataclass
class StepPoint:
    """A training step line: the loss and the wall-clock train time so far."""

    step: int
    total_steps: int
    train_loss: float
    train_time_ms: float
    step_avg_ms: float | None
    line: int


@dataclass
class ValPoint:
    """A validation line during training (`step:N/T val_loss:X val_bpb:X ...`)."""

    step: int
    total_steps: int
    val_loss: float
    val_bpb: float
    train_time_ms: float | None
    line: int


@dataclass
class EvalMetric:
    """A final evaluation of one mode (roundtrip, sliding window, TTT, ...), `_exact` digits preferred."""

    mode: str  # the label as printed, without `_exact`
    val_loss: float
    val_bpb: float
    line: int  # 1-based line of the (last) line that gave the values
    eval_time_ms: float | None = None
    stride: int | None = None
    exact: bool = False  # values come from an `_exact` line
    diagnostic: bool = False  # a diagnostic evaluation (never the score)
    decimals: int = 8  # the fewest decimals either value was printed with

    @property
    def rounding(self) -> float:
        """How far the printed values may be from the computed ones (half a unit of the last decimal)."""
        return 0.5 * 10.0 ** -self.decimals


@dataclass
class RunLog:
    """What one train log says. Every field is None/empty when the log does not say it."""

    source: str
    line_count: int = 0
    byte_count: int = 0
    format_family: str = "unknown"
    problems: list[str] = field(default_factory=list)  # why parts could not be read
    world_size: int | None = None
    seed: int | None = None
    model_params: int | None = None
    dataset: str | None = None  # e.g. fineweb10B_sp1024
    tokenizer: str | None = None  # e.g. fineweb_1024_bpe.model, or "byte"
    vocab_size: int | None = None
    val_token_count: int | None = None
    gpu_names: list[str] = field(default_factory=list)  # from an nvidia-smi table, one per GPU index
    steps: list[StepPoint] = field(default_factory=list)
    val_points: list[ValPoint] = field(default_factory=list)
    stop_reason: str | None = None  # "wallclock_cap", "iterations", or as printed
    stop_step: int | None = None
    stop_train_time_ms: float | None = None
    peak_memory_allocated_mib: int | None = None
    peak_memory_reserved_mib: int | None = None
    raw_model_bytes: int | None = None
    model_bytes: int | None = None  # compressed model, as counted in the artifact
    model_format: str | None = None  # e.g. int8+zlib, quantized+brotli
    code_bytes: int | None = None  # counted code bytes (the compressed figure when the log gives two)
    code_bytes_uncompressed: int | None = None
    total_bytes: int | None = None  # code + compressed model, as the log states it
    metrics: list[EvalMetric] = field(default_factory=list)  # every final evaluation, in order
    # hyperparameters as printed: a `Hyperparameters:` block's `  key: value` lines, lines of several
    # `key=value` / `key:value` pairs, and lines that are one such pair; key -> value, first statement kept
    settings: dict[str, str] = field(default_factory=dict)
    setting_lines: dict[str, int] = field(default_factory=dict)  # key -> 1-based line it came from
    script: str | None = None  # the embedded training script, when the log holds one
    script_lines: tuple[int, int] | None = None  # its first and last 1-based line
    lines: dict[str, int] = field(default_factory=dict)  # field name -> 1-based line it came from

    @property
    def finals(self) -> dict[str, EvalMetric]:
        """The last evaluation of each mode, keyed by the mode's name."""
        result: dict[str, EvalMetric] = {}
        for metric in self.metrics:
            result[metric.mode] = metric
        return result

    def score(self) -> EvalMetric | None:
        """The log's own score: its last non-diagnostic final evaluation (see the module docstring)."""
        candidates = [m for m in self.metrics if not m.diagnostic]
        return max(candidates, key=lambda m: m.line) if candidates else None

    @property
    def train_time_ms(self) -> float | None:
        """Training wall-clock at the stop: the stop line, else the last step or validation line."""
        if self.stop_train_time_ms is not None:
            return self.stop_train_time_ms
        times = [(p.line, p.train_time_ms) for p in [*self.steps, *self.val_points] if p.train_time_ms is not None]
        return max(times)[1] if times else None

    @property
    def last_step(self) -> int | None:
        steps = [p.step for p in [*self.steps, *self.val_points]]
        if self.stop_step is not None:
            steps.append(self.stop_step)
        return max(steps) if steps else None


def parse_submission_logs(submission: Submission) -> dict[str, RunLog]:
    """Every readable log of a submission folder, parsed, keyed by its path inside the folder (parsed
    once per loaded folder: the folder checks and the claims read the same logs)."""
    if "logs" not in submission.derived:
        submission.derived["logs"] = {entry.relpath: parse_log(submission.file(entry.relpath), name=entry.relpath)
                                      for entry in submission.files_of(LOG)}
    return submission.derived["logs"]


def parse_log(source: Path | str | bytes, name: str | None = None) -> RunLog:
    """Parse a log: a Path is read from disk; str or bytes are the log's content. Never raises."""
    label = name or (str(source) if isinstance(source, Path) else "<text>")
    run = RunLog(source=label)
    try:
        text = _read_text(source, run)
        lines = _split_lines(text)
        run.line_count = len(lines)
        scripts = _find_scripts(lines)
        if scripts:  # the last copy belongs to the last run, the one a RunLog describes
            script_start, script_end = scripts[-1]
            run.script = "\n".join(lines[script_start:script_end])
            run.script_lines = (script_start + 1, script_end)
        _Parser(run).feed(lines, skip=scripts)
    except Exception as error:  # the parser's contract: a finding, never a traceback
        run.problems.append(f"parser stopped early: {type(error).__name__}: {error}")
    if not run.metrics:
        run.problems.append("no final metric line (final_*, quantized*, *_ttt ... val_loss val_bpb)")
    return run


def _read_text(source: Path | str | bytes, run: RunLog) -> str:
    if isinstance(source, str):
        run.byte_count = len(source.encode("utf-8", "surrogatepass"))
        if not source:
            run.problems.append("the log is empty")
        return source
    if isinstance(source, Path):
        try:
            with source.open("rb") as handle:
                data = handle.read(MAX_FILE_BYTES + 1)
        except OSError as error:
            run.problems.append(f"cannot read the file ({error.strerror or error})")
            return ""
    else:
        data = bytes(source)
    if len(data) > MAX_FILE_BYTES:
        data = data[:MAX_FILE_BYTES]
        run.problems.append(f"only the first {MAX_FILE_BYTES} bytes were read")
    run.byte_count = len(data)
    if not data:
        run.problems.append("the log is empty")
        return ""
    if data.count(b"\x00") > len(data) // 100:
        run.problems.append("the log looks binary (NUL bytes)")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        run.problems.append(f"not valid UTF-8 (first bad byte at offset {error.start}); bad bytes replaced")
        return data.decode("utf-8", errors="replace")


def _split_lines(text: str) -> list[str]:
    """Lines as a terminal shows them: split on '\\n' only (so line numbers match grep -n), a trailing
    '\\r' dropped, and for progress bars that redraw with '\\r' only the last redraw kept."""
    if "\x1b" in text:
        text = _ANSI.sub("", text)
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    for index, line in enumerate(lines):
        if "\r" in line:
            line = line.rstrip("\r")
            line = line[line.rfind("\r") + 1:]
        if "\x00" in line or _CONTROL.search(line):
            line = _CONTROL.sub("", line)
        lines[index] = line
    return lines


def _find_scripts(lines: list[str]) -> list[tuple[int, int]]:
    """Where embedded training scripts lie, as [start, end) ranges of line indices.

    The logger writes the source and then a separator line; the source may follow launcher noise, a
    `Hyperparameters:` block of indented `key: value` lines, or a `Source code:` heading, and a file
    holding several appended runs holds several copies. A block counts as source when it starts like a
    Python file and holds a def, class or import at the start of a line.
    """
    separators = [i for i, line in enumerate(lines) if line.rstrip() == SEPARATOR]
    regions: list[tuple[int, int]] = []
    boundary = 0
    for separator in separators:
        start = next((i for i in range(boundary, separator) if _PY_START.match(lines[i])), None)
        if start is not None and separator - start >= 5 and \
                _PY_BODY.search("\n".join(lines[start:min(separator, start + 400)])):
            regions.append((start, separator))
        boundary = separator + 1
    return regions


class _Parser:
    """One pass over the lines, filling a RunLog; each handler tries one family of line formats."""

    def __init__(self, run: RunLog) -> None:
        self.run = run
        self.families: set[str] = set()
        self.finished = False  # a stop line or a final metric was seen: a later run start is a new run
        self.run_starts: list[int] = [1]

    def feed(self, lines: list[str], skip: list[tuple[int, int]]) -> None:
        skipped = iter(skip)
        region = next(skipped, None)
        for index, raw in enumerate(lines):
            while region is not None and index >= region[1]:
                region = next(skipped, None)
            if region is not None and region[0] <= index:
                continue
            line = _PREFIX.sub("", raw, count=1) if raw[:1] in "[0123456789" else raw
            if not line or (":" not in line and "=" not in line):
                continue
            self._line(line, index + 1)
        self.run.format_family = self._family()
        if len(self.run_starts) > 1:
            starts = [str(n) for n in self.run_starts]
            shown = ", ".join(starts if len(starts) <= 6 else [*starts[:3], "...", *starts[-2:]])
            self.run.problems.append(f"the log holds {len(starts)} runs (or copies of one), starting at lines "
                                     f"{shown}; the last one is described")
        points = [*self.run.steps, *self.run.val_points]
        if self.run.stop_reason is None and points:
            last = max(points, key=lambda p: p.line)
            if last.step == last.total_steps:
                self.run.stop_reason = "iterations"

    def _line(self, line: str, number: int) -> None:
        head = line[:4]
        if head == "step":
            if self._step(line, number):
                return
        elif head[:1].isdigit():
            if self._bare_step(line, number):
                return
        if "val_loss" in line and "val_bpb" in line and self._metric(line, number):
            return
        if self._sizes(line, number):
            return
        self._facts(line, number)

    def _step(self, line: str, number: int) -> bool:
        match = _STEP_VAL.match(line)
        if match:
            self.families.add("baseline")
            self.run.val_points.append(ValPoint(int(match[1]), int(match[2]), _float(match[3]), _float(match[4]),
                                                _float(match[5]) if match[5] else None, number))
            return True
        match = _STEP_TRAIN.match(line)
        if match:
            self.families.add("compact" if " t:" in line and "train_time" not in line else "baseline")
            self.run.steps.append(StepPoint(int(match[1]), int(match[2]), _float(match[3]), _float(match[4]),
                                            _float(match[5]) if match[5] else None, number))
            return True
        return False

    def _bare_step(self, line: str, number: int) -> bool:
        match = _STEP_TRAIN_MIN.match(line)
        if match:
            self.families.add("hparams")
            minutes = _float(match[4])
            self.run.steps.append(StepPoint(int(match[1]), int(match[2]), _float(match[3]), minutes * 60_000.0,
                                            None, number))
            return True
        match = _STEP_VAL_BARE.match(line)
        if match:
            self.families.add("hparams")
            self.run.val_points.append(ValPoint(int(match[1]), int(match[2]), _float(match[3]), _float(match[4]),
                                                None, number))
            return True
        return False

    def _metric(self, line: str, number: int) -> bool:
        match = _METRIC.match(line)
        if not match:
            return False
        label = match["label"].strip()
        if label.lower().startswith(("step", "val_")):
            return False
        exact = label.endswith("_exact")
        mode = label[: -len("_exact")] if exact else label
        if match["sliding"]:
            mode += " sliding"
        loss, bpb, rest = _float(match["loss"]), _float(match["bpb"]), match["rest"]
        time_match = _EVAL_TIME.search(rest)
        eval_time = None
        if time_match:
            eval_time = _float(time_match[1]) if time_match[1] else _float(time_match[2]) * 1000.0
        stride = match["stride"] or (_STRIDE.search(rest)[1] if _STRIDE.search(rest) else None)
        diagnostic = any(marker in mode.lower() for marker in DIAGNOSTIC_MARKERS)
        previous = self.run.metrics[-1] if self.run.metrics else None
        decimals = min(_decimals(match["loss"]), _decimals(match["bpb"]))
        if exact and previous is not None and _agrees(previous, loss, bpb):
            if previous.mode == mode:  # the _exact twin of the line just before: keep its digits
                previous.val_loss, previous.val_bpb, previous.exact, previous.line = loss, bpb, True, number
                previous.decimals = max(previous.decimals, decimals)
            # else an echo of the previous mode's value under another name (a compatibility line)
            return True
        self.run.metrics.append(EvalMetric(mode, loss, bpb, number, eval_time, int(stride) if stride else None,
                                           exact, diagnostic, decimals))
        self.finished = True
        return True

    def _sizes(self, line: str, number: int) -> bool:
        run = self.run
        if line.startswith("Serialized model"):
            match = _RAW_MODEL.match(line)
            if match:
                run.raw_model_bytes = int(match[1])
                return True
            match = _MODEL.match(line)
            if match:
                run.model_format, run.model_bytes = match[1], int(match[2])
                run.lines["model_bytes"] = number
                return True
        elif line.startswith("Code size"):
            match = _CODE.match(line)
            if match:
                if match[1] == "uncompressed":
                    run.code_bytes_uncompressed = int(match[2])
                else:
                    run.code_bytes = int(match[2])
                    run.lines["code_bytes"] = number
                return True
        elif line.startswith("Total submission size"):
            match = _TOTAL.match(line)
            # an unlabeled total is the raw one (uncompressed model + code) unless a compressed model
            # was already reported (some scripts print only the compressed pair, without a label)
            if match and (match[1] or run.model_bytes is not None):
                run.total_bytes = int(match[2])
                run.lines["total_bytes"] = number
                return True
            return match is not None
        elif line.startswith("Raw model:"):
            match = _RAW_TOTAL.match(line)
            if match:
                run.raw_model_bytes, run.code_bytes = int(match[1]), int(match[2])
                run.lines["code_bytes"] = number
                return True
        elif line.startswith("artifact:"):
            match = _COMPACT_ARTIFACT.match(line)
            if match:
                run.code_bytes = int(match[1])
                run.lines["code_bytes"] = number
                return True
        elif line.startswith("budget:"):
            match = _COMPACT_BUDGET.match(line)
            if match:
                run.total_bytes = int(match[1])
                run.lines["total_bytes"] = number
                if run.code_bytes is not None and run.model_bytes is None:
                    run.model_bytes = run.total_bytes - run.code_bytes
                    run.lines["model_bytes"] = number
                return True
        elif " model:" in line and "Total submission:" in line:
            match = _MODEL_TOTAL.match(line)
            if match:
                run.model_format, run.model_bytes, run.total_bytes = match[1], int(match[2]), int(match[3])
                run.lines["model_bytes"] = run.lines["total_bytes"] = number
                return True
        return False

    def _facts(self, line: str, number: int) -> None:
        self._known_facts(line, number)
        if not self.run.steps and not self.run.val_points:  # settings are printed before training
            self._hyperparameters(line, number)

    def _hyperparameters(self, line: str, number: int) -> None:
        """Record the `key: value` / `key=value` statements of a line (after a run start resets them)."""
        match = _HPARAM_LINE.match(line)
        pairs = [(match[1], match[2].strip())] if match else _KV_TOKEN.findall(line)
        if not pairs or (len(pairs) == 1 and not match and " " in line.strip()):
            return  # one pair inside prose ("temp_scaling optimal_T:0.90") is output, not a setting
        for key, value in pairs:
            if key not in self.run.settings:
                self.run.settings[key] = value
                self.run.setting_lines[key] = number

    def _known_facts(self, line: str, number: int) -> None:
        run = self.run
        if line.startswith("val_bpb:enabled"):  # the baseline logger's first line of a run
            self._new_run_if_finished(number)
        match = _STOP.match(line)
        if match:
            run.stop_reason, run.stop_train_time_ms = match[1], _float(match[2])
            run.stop_step = int(match[3]) if match[3] else None
            run.lines["stop"] = number
            self.finished = True
            return
        match = _PEAK.match(line)
        if match:
            run.peak_memory_allocated_mib = int(match[1])
            run.peak_memory_reserved_mib = int(match[2]) if match[2] else None
            return
        match = _WORLD.match(line)
        if match:
            self._new_run_if_finished(number)
            self._set("world_size", int(match[1]), number)
            return
        match = _COMPACT_PARAMS.search(line)
        if match:
            self.families.add("compact")
            self._new_run_if_finished(number)
            self._set("model_params", int(match[1].replace(",", "")), number)
            self._set("world_size", int(match[2]), number)
            if match[3]:
                self._set("seed", int(match[3]), number)
            return
        match = _PARAMS.match(line)
        if match:
            self._new_run_if_finished(number)
            self._set("model_params", int(match[1]), number)
            return
        match = _SEED.match(line)
        if match:
            self._set("seed", int(match[1]), number)
            return
        match = _VAL_LOADER.match(line)
        if match:
            self._new_run_if_finished(number)
            self._set("val_token_count", int(match[2]), number)
            self._set("dataset", _dataset_of(match[1]), number)
            return
        match = _VAL_TOKENS.match(line)
        if match:
            self._new_run_if_finished(number)
            self._set("val_token_count", int(match[1]), number)
            return
        match = _DATASET.match(line)
        if match:
            self._set("dataset", match[1], number)
            return
        match = _GPU.match(line)
        if match:
            index = int(match[1])
            if index == len(run.gpu_names):
                run.gpu_names.append(match[2].strip())
                run.lines.setdefault("gpu", number)
            return
        if line.strip() == "Hyperparameters:" or line.startswith("--- Hyperparameters"):
            self._new_run_if_finished(number)
            self.families.add("hparams" if line.strip() == "Hyperparameters:" else "compact")
            return
        if "=" in line or ":" in line:
            self._settings(line, number)

    def _settings(self, line: str, number: int) -> None:
        """Facts that come as `key: value` in a hyperparameter block or `key=value` on one line."""
        match = _DATA_DIR.match(line) or _KV_DATA.search(line)
        if match:
            self._set("dataset", _dataset_of(match[1]), number)
        match = _TOKENIZER.search(line)
        if match:
            self._set("tokenizer", match[1].rstrip("/").rsplit("/", 1)[-1], number)
        elif "tokenizer_kind=byte" in line or _TOKENIZER_KIND.search(line) and "byte" in line:
            self._set("tokenizer", "byte", number)
        match = _VOCAB.search(line)
        if match:
            self._set("vocab_size", int(match[1]), number)
        match = _KV_SEED.search(line)
        if match:
            self._set("seed", int(match[1]), number)
        match = _NPROC.search(line)
        if match:
            self._set("world_size", int(match[1]), number)

    def _new_run_if_finished(self, number: int) -> None:
        """A run-start line after a finished run: several runs were appended to one file. Describe the
        last one (its score is the log's last final metric) and forget what the earlier ones said."""
        if not self.finished:
            return
        self.finished = False
        self.run_starts.append(number)
        kept = {"source", "line_count", "byte_count", "problems", "script", "script_lines"}
        for spec in fields(RunLog):
            if spec.name not in kept:
                default = spec.default_factory() if spec.default_factory is not MISSING else spec.default
                setattr(self.run, spec.name, default)

    def _set(self, name: str, value: object, number: int) -> None:
        """Keep the first statement of a fact (later ones are usually echoes of other ranks or runs)."""
        if getattr(self.run, name) is None:
            setattr(self.run, name, value)
            self.run.lines[name] = number

    def _family(self) -> str:
        for family in ("hparams", "compact", "baseline"):
            if family in self.families:
                return family
        if any(m.mode.startswith("final_") for m in self.run.metrics):
            return "baseline"
        return "unknown"


def _dataset_of(path: str) -> str | None:
    """The dataset directory's name from a path or a shard pattern (…/fineweb10B_sp1024/fineweb_val_*.bin)."""
    parts = [p for p in path.strip("'\"").split("/") if p and p != "."]
    if parts and ("*" in parts[-1] or parts[-1].endswith(".bin")):
        parts = parts[:-1]
    return parts[-1] if parts else None


def _float(text: str) -> float:
    try:
        return float(text)
    except (TypeError, ValueError):
        return math.nan


def _decimals(text: str) -> int:
    mantissa = text.lower().split("e")[0]
    return len(mantissa.split(".")[1]) if "." in mantissa else 0


def _agrees(metric: EvalMetric, loss: float, bpb: float) -> bool:
    """Whether precise values round to the printed ones of `metric` (an `_exact` twin or an echo)."""
    slack = metric.rounding * 1.001 + 1e-12
    return abs(metric.val_loss - loss) <= slack and abs(metric.val_bpb - bpb) <= slack
