"""claims.provenance: is the script a log embeds the code the folder submits?

Each log's embedded copy is compared with the code file it most resembles (`script.closest_file`), and
the difference is classified:
- exact: equal up to line endings and trailing blank lines;
- whitespace: equal once whitespace is removed from every line (a re-indented line);
- damaged: the copy's head was overwritten by the run's own output (a shell redirect and the logger
  writing one file): the differing lines are log lines, the rest equals the file;
- harmless: the two parse to the same program once docstrings, logging calls, pure assignments to names
  nothing reads and the defaults of environment settings are set aside, and every changed default the log states
  agrees with the file (the file was edited after the run without changing what ran);
- different: anything else.
Only the logs behind the claimed score are judged (ablations and reruns beside them are not). A
different copy fails, except when no claim matched and another log embeds a file of the folder exactly:
then it is an ablation or an earlier run, and a warning.
"""

from __future__ import annotations

import ast
import difflib
import functools
import hashlib
import re
from dataclasses import dataclass, field
from typing import Any, Mapping

from harness.findings import FAIL, PASS, SKIP, WARN, Finding, finding
from harness.submission.folder import Submission
from harness.submission.logs import RunLog
from harness.submission.script import closest_file, code_texts, counted_script, dotted_name, parse_python

EXACT, WHITESPACE, DAMAGED, HARMLESS, DIFFERENT = "exact", "whitespace", "damaged", "harmless", "different"
_HEAD_LINES = 60  # a damaged head starts within the copy's first lines
_OUTPUT_SHARE = 0.6  # of the differing lines of a damaged copy, at least this share are log lines
_OUTPUT_LINE = re.compile(r"^(?:step:\d|warmup_step|[A-Za-z_][\w .+/-]*:\s*\S|[A-Za-z_][\w.]*=\S)")
_PYTHON_START = re.compile(r"^(?:def|class|import|from|if|elif|else|for|while|with|try|except|finally|return|"
                           r"raise|assert|async|await|global|lambda|@|#)\b")
_ENV_GETTERS = ("os.environ.get", "os.getenv", "environ.get")
_LOG_CALLS = re.compile(r"^(?:print|log\w*|logger\.\w+|logging\.\w+|\w+\.log\w*)$")
_PURE_CALLS = frozenset({"int", "float", "bool", "str", "len", "os.environ.get", "os.getenv", "environ.get",
                         "time.time", "time.perf_counter", "time.monotonic"})


@dataclass
class Comparison:
    """How one log's embedded copy relates to the code file it most resembles."""

    kind: str  # EXACT, WHITESPACE, DAMAGED, HARMLESS or DIFFERENT
    target: str  # the code file compared with
    text: str  # what differs, one clause
    values: dict[str, Any] = field(default_factory=dict)  # numbers for the evidence
    line: int | None = None  # the log line of the first difference


def check_provenance(submission: Submission, logs: Mapping[str, RunLog], backing: list[str],
                     claim_matched: bool) -> list[Finding]:
    embedded = {name: logs[name] for name in backing if logs[name].script}
    if not embedded:
        return [finding("claims.provenance", SKIP, "no log behind the claim embeds its training script.")]
    code = code_texts(submission)
    if not code:  # files.required reports the missing script
        return [finding("claims.provenance", SKIP, f"{_names(sorted(embedded))} embed(s) a script, but the folder "
                        "holds no Python code to compare it with.")]
    counted = counted_script(submission, logs).relpath
    compared = {name: compare(code, log) for name, log in sorted(embedded.items())}
    exact_anywhere = any(cmp.kind == EXACT for cmp in compared.values()) or any(
        _is_exact(code, log) for name, log in logs.items() if log.script and name not in compared)
    findings, exact = [], []
    for name, cmp in compared.items():
        start = embedded[name].script_lines[0] if embedded[name].script_lines else 1
        where = {"file": name, "line": start + cmp.line - 1 if cmp.line else start,
                 "sha256": _sha(embedded[name].script), "compared_with": cmp.target, **cmp.values}
        if cmp.kind == EXACT and cmp.target == counted:
            exact.append(name)
        elif cmp.kind == EXACT:
            findings.append(finding("claims.provenance", WARN, f"{name} embeds {cmp.target}, not {counted}, the "
                                    "counted code (R1.2): the counted code is not the script that produced this log.",
                                    **where))
        elif cmp.kind in (WHITESPACE, DAMAGED, HARMLESS):
            findings.append(finding("claims.provenance", WARN, f"{name} embeds {cmp.target} {cmp.text}.", **where))
        elif not claim_matched and exact_anywhere:
            findings.append(finding("claims.provenance", WARN, f"{name} embeds a script that differs from "
                                    f"{cmp.target} ({cmp.text}); no claim rests on it and other logs embed the "
                                    "folder's code exactly: an ablation or an earlier run.", **where))
        else:
            findings.append(finding("claims.provenance", FAIL, f"{name} embeds a script that differs from "
                                    f"{cmp.target}: {cmp.text}.", **where))
    if exact:
        findings.insert(0, finding("claims.provenance", PASS, f"{_names(exact)} embed(s) exactly {counted} "
                                   "(sha256 equal up to line endings).", logs=exact, sha256=_sha(code[counted])))
    return findings


def compare(code: Mapping[str, str], log: RunLog) -> Comparison:
    target, _ = closest_file(code, log.script)
    text, script = code[target], log.script
    if _normalised(text) == _normalised(script):
        return Comparison(EXACT, target, "exactly")
    file_lines, log_lines = _normalised(text).split("\n"), _normalised(script).split("\n")
    if [re.sub(r"\s+", "", line) for line in file_lines] == [re.sub(r"\s+", "", line) for line in log_lines]:
        first = next(i for i, (a, b) in enumerate(zip(file_lines, log_lines)) if a != b)
        return Comparison(WHITESPACE, target, f"with only whitespace differing (first at line {first + 1} of the "
                          "file): a re-indented or re-spaced copy", {"first_differing_line": first + 1}, first + 1)
    opcodes = difflib.SequenceMatcher(None, file_lines, log_lines).get_opcodes()
    damaged = _damaged(opcodes, file_lines, log_lines)
    if damaged is not None:
        text_, values, line = damaged
        return Comparison(DAMAGED, target, text_, values, line)
    summary = _diff_summary(opcodes, file_lines, log_lines)
    harmless = _harmless(text, script, log)
    if harmless is not None:
        return Comparison(HARMLESS, target, f"but the file was edited after the run, without changing what ran: "
                          f"{harmless}", summary["values"], summary["log_line"])
    return Comparison(DIFFERENT, target, summary["text"], summary["values"], summary["log_line"])


def _is_exact(code: Mapping[str, str], log: RunLog) -> bool:
    target, _ = closest_file(code, log.script)
    return _normalised(code[target]) == _normalised(log.script)


def _normalised(text: str) -> str:
    return text.replace("\r\n", "\n").rstrip()


def _damaged(opcodes, file_lines: list[str], log_lines: list[str]) -> tuple[str, dict, int] | None:
    """The copy's head overwritten by run output: one differing block near the start, mostly log lines,
    and the rest of the file equal."""
    differing = [op for op in opcodes if op[0] != "equal"]
    if len(differing) != 1:
        return None
    tag, i1, i2, j1, j2 = differing[0]
    if i1 > _HEAD_LINES or j1 > _HEAD_LINES or i2 - i1 > 0.2 * len(file_lines):
        return None
    if tag == "delete" and i1 == 0:
        return (f"with its first {i2} lines missing (the head of the copy was overwritten); the rest equals the file",
                {"lines_missing": i2}, 1)
    inserted = log_lines[j1:j2]
    output = sum(1 for line in inserted if _OUTPUT_LINE.match(line) and not _PYTHON_START.match(line))
    if not inserted or output < _OUTPUT_SHARE * len(inserted):
        return None
    return (f"in a damaged copy: lines {j1 + 1}-{j2} of the copy are the run's own output written over "
            f"{i2 - i1} line(s) of the script (from line {i1 + 1}); the other {len(file_lines) - (i2 - i1):,} lines "
            "equal the file", {"output_lines": j2 - j1, "lines_overwritten": i2 - i1}, j1 + 1)


def _diff_summary(opcodes, file_lines: list[str], log_lines: list[str]) -> dict[str, Any]:
    """Lines added and removed (from the file to the log's copy) and where they first differ."""
    added = sum(j2 - j1 for tag, _, _, j1, j2 in opcodes if tag in ("insert", "replace"))
    removed = sum(i2 - i1 for tag, i1, i2, _, _ in opcodes if tag in ("delete", "replace"))
    tag, i1, _, j1, _ = next(op for op in opcodes if op[0] != "equal")
    excerpt = log_lines[j1] if j1 < len(log_lines) else (file_lines[i1] if i1 < len(file_lines) else "")
    return {"text": f"{added} line(s) added, {removed} removed; first difference at line {i1 + 1} of the file",
            "log_line": j1 + 1,
            "values": {"lines_added": added, "lines_removed": removed, "first_differing_line": i1 + 1,
                       "excerpt": excerpt[:200]}}


# -- harmless edits ----------------------------------------------------------------------------------

def _harmless(text: str, script: str, log: RunLog) -> str | None:
    """What differs, when the two are the same program up to docstrings, logging calls, unread
    assignments and environment defaults that the log confirms; None otherwise."""
    states = _same_program(text, script)
    if states is None:
        return None
    file_defaults, log_defaults = states[0].defaults, states[1].defaults
    changed = sorted(env for env in set(file_defaults) | set(log_defaults)
                     if file_defaults.get(env) != log_defaults.get(env))
    confirmed, unknown = [], []
    for env in changed:
        stated = _stated(log, env)
        if stated is None:
            unknown.append(env)
        elif _same_value(stated, file_defaults.get(env)):
            confirmed.append(env)
        else:
            return None  # the run used a value the file's default no longer gives
    differing = states[0].dropped ^ states[1].dropped
    dropped = sorted({name for name, _ in differing if name})
    parts = []
    if confirmed:
        parts.append(f"default(s) of {_names(confirmed)} changed to the value(s) the log shows in force")
    if unknown:
        parts.append(f"default(s) of {_names(unknown)} changed (the log does not state them; the run may have "
                     "set them in the environment)")
    if dropped:
        parts.append(f"assignment(s) to {_names(dropped)}, which nothing reads, added or removed")
    if any(name is None for name, _ in differing):
        parts.append("logging calls differ")
    return "; ".join(parts) or "only comments, docstrings or formatting differ"


@functools.lru_cache(maxsize=8)
def _same_program(text: str, script: str) -> tuple[_Canonical, _Canonical] | None:
    """The two canonical forms (with what each set aside), when they are equal; None otherwise. Cached:
    several logs of a folder often embed the same copy."""
    try:
        read = _read_names(text) | _read_names(script)
        states = (_Canonical(read), _Canonical(read))
        if states[0].of(_tree(text)) != states[1].of(_tree(script)):
            return None
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    return states


class _Canonical:
    """A program as a string, without docstrings, logging calls and pure assignments to names nothing
    reads, and with the defaults of environment settings replaced by a placeholder (recorded)."""

    def __init__(self, read: frozenset[str]) -> None:
        self.read = read
        self.defaults: dict[str, Any] = {}
        self.dropped: set[tuple[str | None, str]] = set()  # (assigned name, or None for a logging call; the statement)

    def of(self, node: Any) -> str:
        if isinstance(node, list):
            if node and isinstance(node[0], ast.stmt):
                node = [stmt for stmt in node if not self._drop(stmt)] or [ast.Pass()]
            return "[" + ",".join(self.of(item) for item in node) + "]"
        if not isinstance(node, ast.AST):
            return repr(node)
        if isinstance(node, ast.Call) and dotted_name(node.func) in _ENV_GETTERS and len(node.args) >= 2 and \
                isinstance(node.args[0], ast.Constant):
            default = node.args[1]
            self.defaults[str(node.args[0].value)] = default.value if isinstance(default, ast.Constant) else ast.dump(default)
            return f"Call({self.of(node.func)},{self.of(node.args[0])},<default>,{self.of(node.args[2:])},{self.of(node.keywords)})"
        return type(node).__name__ + "(" + ",".join(self.of(value) for _, value in ast.iter_fields(node)) + ")"

    def _drop(self, stmt: ast.stmt) -> bool:
        if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant):
            return True
        if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call) and _LOG_CALLS.match(dotted_name(stmt.value.func)):
            self.dropped.add((None, ast.dump(stmt)))
            return True
        if isinstance(stmt, (ast.Assign, ast.AnnAssign)) and stmt.value is not None and _pure(stmt.value):
            targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
            names = [_target_name(t) for t in targets]
            if all(name is not None and name not in self.read for name in names):
                self.dropped.update((name, ast.dump(stmt)) for name in names)
                return True
        return False


@functools.lru_cache(maxsize=8)
def _tree(text: str) -> ast.Module:
    """Parsed once: the folder's file is compared with many logs' copies, which are often the same text."""
    return parse_python(text)


@functools.lru_cache(maxsize=8)
def _read_names(text: str) -> frozenset[str]:
    """Names the program reads: loaded names and attributes, and identifier strings (getattr(h, "x"))."""
    read = set()
    for node in ast.walk(_tree(text)):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
            read.add(node.id)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Load):
            read.add(node.attr)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.isidentifier():
            read.add(node.value)
    return frozenset(read)


def _pure(expr: ast.expr) -> bool:
    return all(dotted_name(node.func) in _PURE_CALLS for node in ast.walk(expr) if isinstance(node, ast.Call))


def _target_name(target: ast.expr) -> str | None:
    """A variable, or an attribute of `self` (a setting in a config class); an attribute of anything else
    (torch.backends.cuda.matmul.allow_tf32 = True) changes what runs even when nothing reads it back."""
    if isinstance(target, ast.Name):
        return target.id
    if isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name) and target.value.id == "self":
        return target.attr
    return None


def _stated(log: RunLog, env: str) -> str | None:
    """The value the log states for an environment setting (under its own name, lower-cased or not)."""
    for key in (env.lower(), env):
        if key in log.settings:
            return log.settings[key]
    return None


def _same_value(stated: str, default: Any) -> bool:
    if default is None:
        return False
    text = str(default)
    try:
        return float(stated) == float(text)
    except ValueError:
        return stated.strip("'\"").lower() == text.strip("'\"").lower()


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _names(items: list[str]) -> str:
    shown = ", ".join(items[:4])
    return shown + (f" and {len(items) - 4} more" if len(items) > 4 else "")
