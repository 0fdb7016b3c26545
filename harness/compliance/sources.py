"""Which Python text the scanner reads for a submission, and in what role.

The entry is `train_gpt.py` (every top-level .py file when the folder has none). From the entries the
scanner follows what runs: sibling modules they import, sibling files they name in strings (exec(open(
"x.py").read()), subprocess ["python", "x.py"]), and self-extracting payloads it can decode statically
(unwrap.py). Those are `reached`; every other .py file in the folder is `auxiliary` (data preparation,
analysis scripts): scanned, but its findings are notes, since it is not part of the run.
Nothing is imported or executed; files the submission model refuses (symlinks outside, oversized) are
never read.
"""

from __future__ import annotations

import ast
import re
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from harness.compliance.fstrings import downlevel
from harness.compliance.names import canonical, import_aliases
from harness.compliance.unwrap import NotStatic, decode_payload
from harness.rules import COUNTED_CODE_FILE, MAX_FILE_BYTES

ENTRY, REACHED, AUXILIARY = "entry", "reached", "auxiliary"
RUN_ROLES = (ENTRY, REACHED)
MAX_WRAPPER_DEPTH = 4  # wrappers inside wrappers; real records use one
_PY_NAME = re.compile(r"[\w.-]+\.py\b")


@dataclass
class Unit:
    """One Python text the scanner analyses."""

    label: str  # how findings name it: "train_gpt.py", or "train_gpt.py[decoded]" for a decoded payload
    relpath: str  # the file it came from, relative to the root
    module: str  # the module name imports use for it ("ngram_tilt", "pkg.mod")
    role: str  # ENTRY, REACHED or AUXILIARY
    text: str
    tree: ast.Module | None = None
    error: str | None = None  # why the text could not be parsed
    wrapped_by: str | None = None  # for a decoded payload: how it was wrapped, e.g. "lzma.decompress(base64.b85decode(...))"
    parsed_with: str | None = None  # how the text was made parseable when plain ast.parse refused it
    lines: list[str] = field(default_factory=list)
    _nodes: list | None = field(default=None, repr=False, compare=False)
    _aliases: dict | None = field(default=None, repr=False, compare=False)

    def nodes(self) -> list[ast.AST]:
        """Every node of the tree (ast.walk order), computed once."""
        if self._nodes is None:
            self._nodes = list(ast.walk(self.tree)) if self.tree is not None else []
        return self._nodes

    def aliases(self) -> dict[str, str]:
        """What the file's imports bind (names.import_aliases), computed once."""
        if self._aliases is None:
            self._aliases = import_aliases(self.tree) if self.tree is not None else {}
        return self._aliases

    def excerpt(self, line: int | None, col: int | None = None, width: int = 160) -> str:
        if line is None or not 1 <= line <= len(self.lines):
            return ""
        text = self.lines[line - 1]
        if len(text) > width and col is not None:  # minified one-liners: show the part around the node
            start = max(0, min(col - width // 4, len(text) - width))
            text = ("…" if start else "") + text[start:start + width] + ("…" if start + width < len(text) else "")
        elif len(text) > width:
            text = text[:width] + "…"
        return text.strip()


@dataclass
class Note:
    """Something seen while loading sources that a detector reports (a wrapper decoded, a payload not)."""

    kind: str  # "wrapper", "embedded_payload", "undecodable_payload", "exec_file", "unreadable", "native_source"
    unit: str  # label of the unit it was seen in (or relpath for files never parsed)
    line: int | None
    message: str
    col: int | None = None


@dataclass
class SourceSet:
    root: Path
    units: list[Unit] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)
    resolved_execs: set[tuple[str, int, int]] = field(default_factory=set)  # (unit label, line, col) decoded or followed
    native_files: list[str] = field(default_factory=list)  # C/C++/CUDA sources in the folder

    def run_units(self) -> list[Unit]:
        return [u for u in self.units if u.role in RUN_ROLES]

    def unit(self, label: str) -> Unit | None:
        return next((u for u in self.units if u.label == label), None)


def parse_unit(unit: Unit) -> None:
    unit.lines = unit.text.splitlines()
    try:
        unit.tree = _parse(unit.text, unit.label)
    except SyntaxError as error:
        rewritten = downlevel(unit.text) if sys.version_info < (3, 12) else None
        try:
            unit.tree = _parse(rewritten, unit.label) if rewritten is not None else None
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            unit.tree = None
        if unit.tree is None:
            unit.error = f"SyntaxError at line {error.lineno}: {error.msg}"
        else:
            unit.parsed_with = "f-strings rewritten for this Python (the file uses Python 3.12 f-string syntax)"
    except (ValueError, RecursionError, MemoryError) as error:  # NUL bytes, absurd nesting
        unit.error = f"cannot be parsed: {type(error).__name__}"


def _parse(text: str, label: str) -> ast.Module:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # SyntaxWarning for odd escapes in submissions is not ours to show
        return ast.parse(text, filename=label)


def module_name(relpath: str) -> str:
    path = PurePosixPath(relpath)
    parts = list(path.parent.parts) + ([] if path.stem == "__init__" else [path.stem])
    return ".".join(parts)


class _Loader:
    def __init__(self, root: Path, python_files: dict[str, Path]) -> None:
        self.root = root
        self.files = python_files  # relpath -> path, every readable .py the scanner may follow
        self.by_module = {module_name(rel): rel for rel in python_files}
        self.by_name = {PurePosixPath(rel).name: rel for rel in sorted(python_files, key=lambda r: r.count("/"))}
        self.result = SourceSet(root=root)
        self.loaded: set[str] = set()

    def load(self, relpath: str, role: str) -> None:
        if relpath in self.loaded:
            return
        self.loaded.add(relpath)
        try:
            text = self.files[relpath].read_bytes().decode("utf-8", errors="replace")
        except OSError as error:
            self.result.notes.append(Note("unreadable", relpath, None, f"{relpath} cannot be read ({error.strerror})"))
            return
        unit = Unit(label=relpath, relpath=relpath, module=module_name(relpath), role=role, text=text)
        self.add(unit, depth=0)

    def add(self, unit: Unit, depth: int) -> None:
        parse_unit(unit)
        self.result.units.append(unit)
        if unit.tree is not None:
            self.follow_execs(unit, depth)

    def follow_execs(self, unit: Unit, depth: int) -> None:
        """Decode exec(<payload>) and follow exec(open(<sibling>).read()) in this unit."""
        aliases = unit.aliases()
        whole_file = _is_wrapper_module(unit.tree)
        for node in unit.nodes():
            if not (isinstance(node, ast.Call) and node.args and canonical(node.func, aliases) in ("exec", "builtins.exec")):
                continue
            where = (unit.label, node.lineno, node.col_offset)
            sibling = self.sibling_read(node.args[0], unit)
            if sibling is not None:
                self.result.resolved_execs.add(where)
                self.result.notes.append(Note("exec_file", unit.label, node.lineno,
                                              f"{unit.label} exec()s the text of {sibling}; scanned it as part of the run", node.col_offset))
                self.load(sibling, REACHED if unit.role in RUN_ROLES else unit.role)
                continue
            try:
                decoded = decode_payload(unit.tree, node.args[0], aliases)
            except NotStatic as error:
                if _mentions_decoder(node.args[0], aliases):
                    self.result.notes.append(Note("undecodable_payload", unit.label, node.lineno,
                                                  f"exec() of an encoded payload the scanner could not decode: {error}", node.col_offset))
                continue
            if depth >= MAX_WRAPPER_DEPTH:
                self.result.notes.append(Note("undecodable_payload", unit.label, node.lineno,
                                              f"payload nested more than {MAX_WRAPPER_DEPTH} wrappers deep; not decoded further", node.col_offset))
                continue
            self.result.resolved_execs.add(where)
            layers = decoded.layers[::-1]  # recorded innermost first
            how = "(".join(layers) + "(...)" + ")" * (len(layers) - 1)
            inner = Unit(label=f"{unit.relpath}[decoded]" if depth == 0 else f"{unit.label}[decoded]", relpath=unit.relpath,
                         module=unit.module, role=unit.role, text=decoded.source, wrapped_by=how)
            kind = "wrapper" if whole_file else "embedded_payload"
            what = "is a self-extracting wrapper" if whole_file else "exec()s an encoded payload"
            self.result.notes.append(Note(kind, unit.label, node.lineno,
                                          f"{unit.label} {what} ({how}); scanned the decoded {len(decoded.source.splitlines()):,}-line source as {inner.label}",
                                          node.col_offset))
            self.add(inner, depth + 1)

    def sibling_read(self, node: ast.expr, unit: Unit) -> str | None:
        """The sibling file named in exec(open(...).read()) / exec(Path(...).read_text()), if any."""
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in ("read", "read_text")):
            return None
        for sub in ast.walk(node.func.value):
            if isinstance(sub, ast.Constant) and isinstance(sub.value, str):
                for name in _PY_NAME.findall(sub.value):
                    found = self.by_name.get(PurePosixPath(name).name)
                    if found and found != unit.relpath:
                        return found
        return None

    def follow_references(self) -> None:
        """Reach sibling modules that run units import, and sibling files they name in strings."""
        changed = True
        while changed:
            changed = False
            for unit in [u for u in self.result.units if u.role in RUN_ROLES and u.tree is not None]:
                for relpath in self.referenced(unit):
                    if relpath not in self.loaded:
                        self.load(relpath, REACHED)
                        changed = True

    def referenced(self, unit: Unit) -> list[str]:
        found = []
        for node in unit.nodes():
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
            elif isinstance(node, ast.Constant) and isinstance(node.value, str) and ".py" in node.value:
                found += [self.by_name[n] for n in _PY_NAME.findall(node.value) if n in self.by_name]
            found += [self.by_module[n] for n in names if n in self.by_module]
        return found


def _is_wrapper_module(tree: ast.Module) -> bool:
    """A file whose only work is to exec something: imports, docstrings and exec(...) statements."""
    has_exec = False
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            continue
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            continue
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant):  # __wrapper_size__=21392
            continue
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call) and isinstance(node.value.func, ast.Name) and node.value.func.id == "exec":
            has_exec = True
            continue
        return False
    return has_exec


def _mentions_decoder(node: ast.expr, aliases: dict[str, str]) -> bool:
    for sub in ast.walk(node):
        if isinstance(sub, ast.Call):
            name = canonical(sub.func, aliases) or ""
            if name.split(".")[0] in ("base64", "binascii", "lzma", "zlib", "gzip", "bz2", "brotli", "codecs", "marshal"):
                return True
    return False


NATIVE_SUFFIXES = (".c", ".cc", ".cpp", ".cxx", ".cu", ".cuh", ".h", ".hpp", ".so", ".ptx")


def collect_sources(root: Path, python_files: dict[str, Path], entries: list[str], others: list[str] = ()) -> SourceSet:
    """Load entries, follow what they run, and load the remaining Python files as auxiliary."""
    loader = _Loader(root, python_files)
    for relpath in entries:
        loader.load(relpath, ENTRY)
    loader.follow_references()
    for relpath in sorted(python_files):
        if relpath not in loader.loaded:
            loader.load(relpath, AUXILIARY)
    loader.result.native_files = sorted(rel for rel in others if rel.lower().endswith(NATIVE_SUFFIXES))
    return loader.result


def sources_for_submission(submission) -> SourceSet:
    """A loaded harness.submission.Submission: entries are train_gpt.py, else every top-level .py."""
    from harness.submission.folder import CODE

    code = submission.files_of(CODE)
    python = {f.relpath: submission.file(f.relpath) for f in code if f.relpath.endswith(".py")}
    entries = [COUNTED_CODE_FILE] if COUNTED_CODE_FILE in python else sorted(rel for rel in python if "/" not in rel)
    others = [f.relpath for f in code if not f.relpath.endswith(".py")]
    result = collect_sources(submission.path, python, entries, others)
    for refused in submission.refused_files():
        if refused.relpath.endswith(".py"):
            result.notes.append(Note("unreadable", refused.relpath, None, f"{refused.relpath} was not read: {refused.refused}"))
    return result


def sources_for_path(path: Path) -> SourceSet:
    """A submission folder or one Python file (its neighbours count only when it imports or runs them)."""
    from harness.submission.folder import load_submission  # the folder walk and its refusals live there

    if path.is_dir():
        return sources_for_submission(load_submission(path))
    siblings = {p.name: p for p in sorted(path.parent.glob("*.py")) if p.is_file() and p.stat().st_size <= MAX_FILE_BYTES}
    siblings[path.name] = path
    result = collect_sources(path.parent, siblings, [path.name])
    result.units = [u for u in result.units if u.role in RUN_ROLES]  # a single file: its neighbours are not ours to judge
    return result
