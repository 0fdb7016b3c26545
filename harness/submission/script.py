"""Which file is a submission's script, and what it runs inside the folder.

The challenge runs train_gpt.py and counts its bytes (R1.2). Accepted folders hold that script under
another name (train_gpt_v5.py, train_jepa_ssm.py), hold a train_gpt.py that is not the script their logs
show running (the baseline beside train_gpt_gdn.py), or a few-byte train_gpt.py that exec()s a sibling
file. `counted_script` says which file ran and how that is known:
- NAMED: train_gpt.py, and no log behind the claim embeds another file of the folder;
- EMBEDDED: the code file the logs behind the claim embed (each log's copy compared with the file it
  most resembles), when train_gpt.py is absent or is not that file;
- README: train_gpt.py is absent, no log embeds a file, and the README runs one (`torchrun ... x.py`).
`local_runs` follows what the script runs inside the folder (imports of sibling modules, exec/runpy/
subprocess of sibling files, transitively), so that the counted bytes are the bytes that run. Nothing
is imported or executed: files are parsed with `ast`.
"""

from __future__ import annotations

import ast
import functools
import re
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Mapping

from harness.errors import UserError
from harness.rules import COUNTED_CODE_FILE
from harness.submission.folder import CODE, README, Submission
from harness.submission.logs import RunLog
from harness.submission.scores import claimed_values, score_submission

NAMED, EMBEDDED, FROM_README = "named", "embedded", "readme"
MIN_RESEMBLANCE = 0.5  # a log's copy and a file share at least half their distinct lines: the same script
_PY_FILE = re.compile(r"[\w.-]+\.py\b")
_README_RUN = re.compile(r"(?:torchrun|python3?|accelerate\s+launch|deepspeed)\b[^\n`]*?([\w./-]+\.py)\b")
_RUNNERS = frozenset({"exec", "builtins.exec", "runpy.run_path", "runpy.run_module", "importlib.import_module",
                      "__import__", "subprocess.run", "subprocess.call", "subprocess.check_call",
                      "subprocess.check_output", "subprocess.Popen", "os.system", "os.execv", "os.execvp",
                      "os.execl", "os.execlp", "os.spawnv", "os.spawnl"})


@dataclass
class LocalRun:
    """A file of the folder that the script runs: how, and from where."""

    relpath: str
    bytes: int
    how: str  # "import", "exec", "runpy", "subprocess"
    by: str  # relpath:line of the statement that runs it


@dataclass
class CountedScript:
    """The file whose bytes count as the submission's code, how that is known, and what it runs."""

    relpath: str | None
    how: str | None  # NAMED, EMBEDDED, FROM_README; None when no script was found
    bytes: int = 0
    reason: str = ""  # how the file was chosen, for messages: "x.py, the script train.log embeds"
    logs: list[str] = field(default_factory=list)  # logs whose embedded copy resembles it most
    runs: list[LocalRun] = field(default_factory=list)

    @property
    def total_bytes(self) -> int:
        return self.bytes + sum(run.bytes for run in self.runs)


def code_texts(submission: Submission) -> dict[str, str]:
    """Every readable Python file of the folder: relpath -> text (read once per loaded folder)."""
    if "code_texts" not in submission.derived:
        texts = {}
        for entry in submission.files_of(CODE):
            if entry.relpath.endswith(".py"):
                try:
                    texts[entry.relpath] = submission.read_text(entry.relpath)
                except UserError:
                    continue
        submission.derived["code_texts"] = texts
    return submission.derived["code_texts"]


def resemblance(text: str, script: str) -> float:
    """Distinct non-blank lines (stripped) the two share, over the larger count: 1.0 for the same file."""
    left, right = _line_set(text), _line_set(script)
    if not left or not right:
        return 0.0
    return len(left & right) / max(len(left), len(right))


def closest_file(code: Mapping[str, str], script: str) -> tuple[str, float] | None:
    """The code file a log's embedded copy most resembles, with the resemblance; ties go to train_gpt.py."""
    if not code:
        return None
    scored = {path: resemblance(text, script) for path, text in code.items()}
    best = max(scored, key=lambda path: (scored[path], path == COUNTED_CODE_FILE, -len(path)))
    return best, scored[best]


def backing_logs(submission: Submission, run_logs: Mapping[str, RunLog]) -> list[str]:
    """The logs behind the claimed score; every log when no claim matched."""
    score = score_submission(run_logs, claimed_values(submission.metadata))
    return score.logs() if score.match is not None else sorted(run_logs)


def counted_script(submission: Submission, run_logs: Mapping[str, RunLog]) -> CountedScript:
    """The submission's script (see the module docstring), computed once per loaded folder."""
    cached = submission.derived.get("counted_script")
    if cached is None:
        cached = submission.derived["counted_script"] = _counted_script(submission, run_logs)
    return cached


def _counted_script(submission: Submission, run_logs: Mapping[str, RunLog]) -> CountedScript:
    code = code_texts(submission)
    votes: dict[str, list[str]] = {}
    for name in backing_logs(submission, run_logs):
        log = run_logs[name]
        found = closest_file(code, log.script) if log.script else None
        if found is not None and found[1] >= MIN_RESEMBLANCE:
            votes.setdefault(found[0], []).append(name)
    counted = submission.counted_code()
    ranked = Counter({path: len(names) for path, names in votes.items()}).most_common()
    if counted is not None and (not votes or COUNTED_CODE_FILE in votes):
        chosen = _script(submission, COUNTED_CODE_FILE, NAMED, f"{COUNTED_CODE_FILE}, the file the challenge runs")
        chosen.logs = votes.get(COUNTED_CODE_FILE, [])
        return chosen
    if ranked:
        path = ranked[0][0]
        logs = votes[path]
        shown = ", ".join(logs[:3]) + (f" and {len(logs) - 3} more" if len(logs) > 3 else "")
        chosen = _script(submission, path, EMBEDDED, f"{path}, the script {shown} embed{'s' if len(logs) == 1 else ''}")
        chosen.logs = logs
        return chosen
    for path in readme_named(submission, code):
        return _script(submission, path, FROM_README, f"{path}, the script the README runs")
    return CountedScript(None, None, reason=f"{COUNTED_CODE_FILE} is missing and no log or README names another script")


def _script(submission: Submission, relpath: str, how: str, reason: str) -> CountedScript:
    entry = submission.entry(relpath)
    return CountedScript(relpath, how, entry.size if entry else 0, reason, runs=local_runs(submission, relpath))


def readme_named(submission: Submission, code: Mapping[str, str]) -> list[str]:
    """Code files the README runs with torchrun/python/..., in the order it names them."""
    readmes = [f for f in submission.files if f.kind == README and f.refused is None]
    if not readmes:
        return []
    try:
        text = submission.read_text(readmes[0].relpath)
    except UserError:
        return []
    by_name = {PurePosixPath(path).name: path for path in sorted(code, key=lambda p: p.count("/"))}
    named = [by_name[PurePosixPath(m).name] for m in _README_RUN.findall(text) if PurePosixPath(m).name in by_name]
    return list(dict.fromkeys(named))


def parsed_file(submission: Submission, relpath: str) -> ast.Module | None:
    """A code file's tree, parsed once per loaded folder; None when it cannot be read or parsed."""
    trees = submission.derived.setdefault("trees", {})
    if relpath not in trees:
        try:
            text = code_texts(submission).get(relpath)
            trees[relpath] = parse_python(text if text is not None else submission.read_text(relpath))
        except (UserError, SyntaxError, ValueError, RecursionError, MemoryError):
            trees[relpath] = None
    return trees[relpath]


def holds_no_code(submission: Submission, relpath: str) -> bool:
    """The file parses and has no statement besides docstrings and `pass` (blank, comments only, or a
    bare docstring)."""
    tree = parsed_file(submission, relpath)
    return tree is not None and all(
        isinstance(node, ast.Pass) or (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant))
        for node in tree.body)


def local_runs(submission: Submission, entry: str) -> list[LocalRun]:
    """Files of the folder that `entry` runs, transitively: imported sibling modules, files named in
    exec/runpy/subprocess calls. Each once, in the order found."""
    code = {f.relpath: f for f in submission.files_of(CODE) if f.relpath.endswith(".py")}
    by_module = {_module_name(path): path for path in code}
    by_name = {PurePosixPath(path).name: path for path in sorted(code, key=lambda p: p.count("/"))}
    found: dict[str, LocalRun] = {}
    queue = [entry]
    while queue:
        current = queue.pop(0)
        text = code_texts(submission).get(current, "")
        if not any(PurePosixPath(path).stem in text for path in code if path != current):
            continue  # names no other file of the folder: nothing to follow, no need to walk its tree
        tree = parsed_file(submission, current)
        if tree is None:
            continue
        for target, how, line in _references(tree, by_module, by_name):
            if target in (entry, current) or target in found:
                continue
            found[target] = LocalRun(target, code[target].size, how, f"{current}:{line}")
            queue.append(target)
    return list(found.values())


def _references(tree: ast.Module, by_module: dict[str, str], by_name: dict[str, str]):
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in by_module:
                    yield by_module[alias.name], "import", node.lineno
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for name in (node.module, *(f"{node.module}.{a.name}" for a in node.names)):
                if name in by_module:
                    yield by_module[name], "import", node.lineno
        elif isinstance(node, ast.Call) and dotted_name(node.func) in _RUNNERS:
            how = _how(dotted_name(node.func))
            for sub in (n for arg in [*node.args, *(k.value for k in node.keywords)] for n in ast.walk(arg)):
                if not (isinstance(sub, ast.Constant) and isinstance(sub.value, str)):
                    continue
                names = [by_name[n] for n in _PY_FILE.findall(sub.value) if n in by_name]
                if how == "import" and sub.value in by_module:
                    names.append(by_module[sub.value])
                for target in names:
                    yield target, how, node.lineno


def _how(function: str) -> str:
    if function.startswith(("subprocess.", "os.")):
        return "subprocess"
    if function.startswith("runpy."):
        return "runpy"
    return "import" if function in ("importlib.import_module", "__import__") else "exec"


def dotted_name(node: ast.expr) -> str:
    """`a.b.c` for a chain of names and attributes, else ""."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return ""


def _module_name(relpath: str) -> str:
    path = PurePosixPath(relpath)
    parts = list(path.parent.parts) + ([] if path.stem == "__init__" else [path.stem])
    return ".".join(parts)


def parse_python(text: str) -> ast.Module:
    """ast.parse without the SyntaxWarnings a submission's odd escapes raise."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # not ours to show
        return ast.parse(text)


@functools.lru_cache(maxsize=64)
def _line_set(text: str) -> frozenset[str]:
    return frozenset(line.strip() for line in text.replace("\r\n", "\n").splitlines() if line.strip())
