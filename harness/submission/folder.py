"""Load a submission folder: which files are code, logs, metadata, README, requirements, other.

Loading walks the folder (skipping .git and __pycache__), records each file's kind and size, refuses the
files it will not read, and parses the metadata JSON. No code of the submission is imported or executed.

Kinds, first matching rule wins (names compared without letter case):
- metadata: `submission.json` at the top level, or `submission_<name>.json` (accepted records use
  submission_ternary.json, submission_binary.json, submission_jepa.json);
- readme: `README.md` at the top level; requirements: `requirements.txt` at the top level;
- code: a source extension (CODE_EXTENSIONS), or no extension and a `#!` first line;
- log: `*.log` anywhere; `*.txt` / `*.out` whose name says log, train or seed, that lie in a folder named
  log*, or whose first 64 KiB look like a training log (val_bpb, val_loss, train_loss, step:N);
- other: the rest (other docs, tokenizer models, JSON results, images).

Refused, recorded with the reason and never read: symlinks leading outside the folder, broken
symlinks, symlinked folders, anything that is not a regular file (a FIFO would hang a reader), files over
rules.MAX_FILE_BYTES, and files or folders the harness may not read.
"""

from __future__ import annotations

import json
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Iterator

from harness.errors import UserError
from harness.rules import COUNTED_CODE_FILE, MAX_FILE_BYTES, NON_RECORD_TRACK, RECORD_TRACK, TRACKS

CODE, LOG, METADATA, README, REQUIREMENTS, OTHER = "code", "log", "metadata", "readme", "requirements", "other"
FILE_KINDS = (CODE, LOG, METADATA, README, REQUIREMENTS, OTHER)

METADATA_FILE = "submission.json"
SKIPPED_DIRS = frozenset({".git", "__pycache__"})
# Source that can run as part of a submission: Python and its extension/notebook forms, CUDA/C/C++
# kernels, shell launchers, Triton/PTX/Metal kernels, and the other languages a launcher could call.
CODE_EXTENSIONS = frozenset({
    ".py", ".pyx", ".pxd", ".pyi", ".ipynb", ".triton",
    ".cu", ".cuh", ".c", ".h", ".cc", ".cpp", ".cxx", ".hpp", ".hh", ".ptx", ".metal",
    ".sh", ".bash", ".zsh",
    ".rs", ".go", ".jl", ".lua", ".mojo", ".js", ".ts",
})
SNIFF_BYTES = 64 * 1024  # enough for a log's first lines or a shebang; never the whole file

_METADATA_VARIANT = re.compile(r"submission[_-][\w.-]+\.json")
_LOG_NAME = re.compile(r"log|train|seed")
_LOG_MARKERS = re.compile(rb"val_bpb|val_loss|train_loss|step[:=]\s*\d")
_NON_FINITE = re.compile(r"-?Infinity|NaN")
_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
# The metadata values a later stage may take as the submitter's claims, straight from submission.json.
CLAIMED_KEYS = ("val_bpb", "val_loss", "val_bpb_std", "val_loss_std", "bytes_total", "bytes_code", "mean_val_bpb")


@dataclass
class SubmissionFile:
    relpath: str  # path inside the folder, with "/" separators
    kind: str  # one of FILE_KINDS
    size: int  # bytes on disk (of the link itself for refused symlinks)
    refused: str | None = None  # why the harness will not read it (symlink outside, too large), or None
    binary: bool | None = None  # first 64 KiB hold NUL bytes or invalid UTF-8; None when not looked at


@dataclass
class Submission:
    path: Path
    files: list[SubmissionFile] = field(default_factory=list)
    metadata: dict[str, Any] | None = None  # parsed submission.json, None if missing or unreadable
    metadata_file: str | None = None  # relpath of the metadata file that was parsed
    metadata_error: str | None = None  # why submission.json could not be parsed
    metadata_error_line: int | None = None  # where in metadata_file, when the error has a place
    metadata_warnings: list[str] = field(default_factory=list)  # parsed, but e.g. a key given twice
    # what readers derive from the files, computed once per load (parsed logs, the counted script)
    derived: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def files_of(self, kind: str) -> list[SubmissionFile]:
        return [f for f in self.files if f.kind == kind and f.refused is None]

    def file(self, relpath: str) -> Path:
        return self.path / relpath

    def entry(self, relpath: str) -> SubmissionFile | None:
        return next((f for f in self.files if f.relpath == relpath), None)

    def refused_files(self) -> list[SubmissionFile]:
        return [f for f in self.files if f.refused is not None]

    def counted_code(self) -> SubmissionFile | None:
        """train_gpt.py at the top level, the one file whose bytes the challenge counts (R1.2)."""
        found = self.entry(COUNTED_CODE_FILE)
        return found if found is not None and found.refused is None else None

    def own_tokenizer(self) -> Path | None:
        """The SentencePiece model the folder brings (`tokenizers/*.model`, or `*.model` at its top level):
        a record that changes the tokenizer ships it, and its data must be tokenised with it. None when
        it brings none; UserError when it brings several (which one the script reads is not knowable)."""
        models = [f.relpath for f in self.files if f.refused is None and f.relpath.endswith(".model")
                  and (f.relpath.count("/") == 0 or (f.relpath.startswith("tokenizers/") and f.relpath.count("/") == 1))]
        if len(models) > 1:
            raise UserError(f"holds {len(models)} tokenizer models ({', '.join(sorted(models)[:3])}); give --tokenizer "
                            "MODEL with --data DIR built in it (harness data build)", self.path)
        return self.file(models[0]) if models else None

    def read_bytes(self, relpath: str) -> bytes:
        """The bytes of a listed file; refused or unreadable files raise UserError, never OSError."""
        found = self.entry(relpath)
        if found is None:
            raise UserError("is not a file of this submission", self.file(relpath))
        if found.refused is not None:
            raise UserError(f"not read: {found.refused}", self.file(relpath))
        try:
            return self.file(relpath).read_bytes()
        except OSError as error:
            raise UserError(f"cannot be read ({error.strerror})", self.file(relpath)) from None

    def read_text(self, relpath: str) -> str:
        """The file as text; bytes that are not UTF-8 become U+FFFD so a log with garbage still reads."""
        return self.read_bytes(relpath).decode("utf-8", errors="replace")

    def track(self) -> str | None:
        """The track, when the folder lies in records/<track>/ (R2.3)."""
        parent = self.path.resolve().parent.name
        return parent if parent in TRACKS else None

    def declared_track(self) -> str | None:
        """The track submission.json names, mapped onto rules.TRACKS (records write it as free text)."""
        value = (self.metadata or {}).get("track")
        if not isinstance(value, str):
            return None
        text = value.lower()
        if "non" in text and "record" in text:
            return NON_RECORD_TRACK
        return RECORD_TRACK if "10min" in text else None

    def claimed(self) -> dict[str, Any]:
        """Numbers submission.json states (R6.1), as written; wrong-typed values are left out."""
        metadata = self.metadata or {}
        claims = {key: metadata[key] for key in CLAIMED_KEYS if _is_number(metadata.get(key))}
        per_seed = _per_seed_results(metadata)
        if per_seed:
            claims["seed_val_bpb"] = {seed: r["val_bpb"] for seed, r in per_seed.items() if _is_number(r.get("val_bpb"))}
        seeds = metadata.get("seeds")
        if isinstance(seeds, list) and all(isinstance(s, int) and not isinstance(s, bool) for s in seeds):
            claims["seeds"] = [str(s) for s in seeds]
        elif per_seed:
            claims["seeds"] = list(per_seed)
        return claims

    def measurements(self) -> dict[str, Any]:
        counted = self.counted_code()
        other_code = {f.relpath: f.size for f in self.files_of(CODE) if f is not counted}
        return {
            "files": {kind: len(self.files_of(kind)) for kind in FILE_KINDS},
            "files_refused": len(self.refused_files()),
            "code_bytes": counted.size if counted else None,
            "other_code_bytes": sum(other_code.values()),
            "other_code_files": other_code,
            "metadata_file": self.metadata_file,
            "track": self.track(),
            "claimed": self.claimed(),
        }


def load_submission(folder: str | Path) -> Submission:
    path = Path(folder)
    if not path.exists():
        raise UserError("no such folder", path)
    if not path.is_dir():
        raise UserError("is not a folder; give the submission folder that holds submission.json", path)
    root = path.resolve()
    try:
        with os.scandir(root):
            pass
    except OSError as error:
        raise UserError(f"cannot read the folder ({error.strerror})", path) from None
    submission = Submission(path=path, files=sorted(_walk(root), key=lambda f: f.relpath))
    _load_metadata(submission)
    return submission


def parse_metadata(raw: bytes) -> tuple[dict[str, Any] | None, str | None, int | None, list[str]]:
    """(document, error, error line, warnings) of a metadata file's bytes. JSON as RFC 8259 defines it:
    UTF-8, no NaN or Infinity (Python's json writes them, other readers refuse them); the top level must
    be an object. Duplicate keys parse (the last wins) with a warning."""
    if not raw.strip():
        return None, "the file is empty", None, []
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line, column = _line_column(raw, error.start, b"\n")
        return None, f"line {line} column {column}: not UTF-8 text (byte 0x{raw[error.start]:02x})", line, []
    duplicates: list[str] = []
    try:
        document = json.loads(text, object_pairs_hook=lambda pairs: _object(pairs, duplicates),
                              parse_constant=_refuse_constant)
    except json.JSONDecodeError as error:
        return None, f"line {error.lineno} column {error.colno}: {error.msg}", error.lineno, []
    except _NonFiniteNumber as error:
        line, column = _non_finite_position(text)
        return None, f"line {line} column {column}: {error} is not a JSON number (RFC 8259 has no NaN or Infinity)", line, []
    except RecursionError:
        return None, "nested too deeply to parse", None, []
    if not isinstance(document, dict):
        return None, f"the top level is {_json_type(document)}; it must be a JSON object", None, []
    warnings = [f"key {key!r} is given more than once; the last value is the one read" for key in dict.fromkeys(duplicates)]
    return document, None, None, warnings


# -- walking and classifying ----------------------------------------------------------------------

def _walk(root: Path) -> Iterator[SubmissionFile]:
    unreadable: list[OSError] = []
    for dirpath, dirnames, filenames in os.walk(root, onerror=unreadable.append):
        here = Path(dirpath)
        dirnames[:] = sorted(d for d in dirnames if d not in SKIPPED_DIRS)
        for name in [d for d in dirnames if (here / d).is_symlink()]:
            dirnames.remove(name)  # os.walk lists links to folders as folders; never follow them
            yield _entry(root, here / name)
        for name in sorted(filenames):
            yield _entry(root, here / name)
    for error in unreadable:
        relpath = Path(error.filename).relative_to(root).as_posix() + "/"
        yield SubmissionFile(relpath, OTHER, 0, refused=f"folder cannot be read ({error.strerror})")


def _entry(root: Path, path: Path) -> SubmissionFile:
    relpath = path.relative_to(root).as_posix()
    kind = _kind_by_name(relpath)
    try:
        info = os.lstat(path)
        if stat.S_ISLNK(info.st_mode):
            reason = _symlink_refusal(root, path)
            if reason:
                return SubmissionFile(relpath, kind, info.st_size, refused=reason)
            info = os.stat(path)
    except OSError as error:
        return SubmissionFile(relpath, kind, 0, refused=f"cannot be examined ({error.strerror})")
    if not stat.S_ISREG(info.st_mode):
        return SubmissionFile(relpath, kind, 0, refused="not a regular file (a FIFO, socket or device)")
    if info.st_size > MAX_FILE_BYTES:
        return SubmissionFile(relpath, kind, info.st_size,
                              refused=f"{info.st_size:,} bytes, over the {MAX_FILE_BYTES:,}-byte limit on files the harness reads")
    if not os.access(path, os.R_OK):
        return SubmissionFile(relpath, kind, info.st_size, refused="cannot be read (permission denied)")
    if not _needs_sniff(relpath, kind):
        return SubmissionFile(relpath, kind, info.st_size)
    try:
        with open(path, "rb") as handle:
            head = handle.read(SNIFF_BYTES)
    except OSError as error:
        return SubmissionFile(relpath, kind, info.st_size, refused=f"cannot be read ({error.strerror})")
    binary = _looks_binary(head)
    return SubmissionFile(relpath, _kind_by_content(relpath, kind, head, binary), info.st_size, binary=binary)


def _symlink_refusal(root: Path, path: Path) -> str | None:
    target = Path(os.path.realpath(path))
    if target != root and root not in target.parents:
        return f"symlink pointing outside the folder (to {target})"
    if not target.exists():
        return "broken symlink"
    if target.is_dir():
        return "symlink to a folder (not followed; its files are listed under their real path)"
    return None


def _kind_by_name(relpath: str) -> str:
    parts = relpath.lower().split("/")
    name, folders = parts[-1], parts[:-1]
    suffix = PurePosixPath(name).suffix
    if not folders and (name == METADATA_FILE or _METADATA_VARIANT.fullmatch(name)):
        return METADATA
    if not folders and name == "readme.md":
        return README
    if not folders and name == "requirements.txt":
        return REQUIREMENTS
    if suffix in CODE_EXTENSIONS:
        return CODE
    if suffix == ".log":
        return LOG
    if suffix in (".txt", ".out") and (_LOG_NAME.search(name) or any(f.startswith("log") for f in folders)):
        return LOG
    return OTHER


def _needs_sniff(relpath: str, kind: str) -> bool:
    """Logs and code are looked at (text or not); other names only when their content decides the kind."""
    suffix = PurePosixPath(relpath.lower()).suffix
    return kind in (CODE, LOG) or (kind == OTHER and suffix in ("", ".txt", ".out"))


def _kind_by_content(relpath: str, kind: str, head: bytes, binary: bool) -> str:
    if kind != OTHER or binary:
        return kind
    if PurePosixPath(relpath).suffix == "":
        return CODE if head.startswith(b"#!") else OTHER
    return LOG if _LOG_MARKERS.search(head) else OTHER


def _looks_binary(head: bytes) -> bool:
    if b"\0" in head:
        return True
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as error:
        # A multi-byte character cut by the sniff window is still text.
        return not (len(head) == SNIFF_BYTES and error.start >= len(head) - 3 and error.reason == "unexpected end of data")
    return False


# -- metadata -------------------------------------------------------------------------------------

def _load_metadata(submission: Submission) -> None:
    candidates = [f for f in submission.files if f.kind == METADATA]
    if not candidates:
        return
    chosen = next((f for f in candidates if f.relpath.lower() == METADATA_FILE), candidates[0])
    submission.metadata_file = chosen.relpath
    if chosen.refused is not None:
        submission.metadata_error = f"not read: {chosen.refused}"
        return
    try:
        raw = submission.file(chosen.relpath).read_bytes()
    except OSError as error:
        submission.metadata_error = f"cannot be read ({error.strerror})"
        return
    (submission.metadata, submission.metadata_error, submission.metadata_error_line,
     submission.metadata_warnings) = parse_metadata(raw)


class _NonFiniteNumber(ValueError):
    pass


def _refuse_constant(token: str) -> Any:
    raise _NonFiniteNumber(token)


def _object(pairs: list[tuple[str, Any]], duplicates: list[str]) -> dict[str, Any]:
    document: dict[str, Any] = {}
    for key, value in pairs:
        if key in document:
            duplicates.append(key)
        document[key] = value
    return document


def _non_finite_position(text: str) -> tuple[int, int]:
    """Where the first NaN/Infinity outside a string is: strings are blanked first (same length, and
    JSON strings hold no raw line breaks, so lines and columns stay put)."""
    blanked = _JSON_STRING.sub(lambda m: " " * len(m.group()), text)
    match = _NON_FINITE.search(blanked)
    return _line_column(text, match.start() if match else 0, "\n")


def _line_column(data, offset: int, newline) -> tuple[int, int]:
    line_start = data.rfind(newline, 0, offset) + 1
    return data.count(newline, 0, offset) + 1, offset - line_start + 1


def _json_type(value: Any) -> str:
    names = {list: "an array", str: "a string", bool: "true or false", type(None): "null", int: "a number", float: "a number"}
    return names.get(type(value), type(value).__name__)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _per_seed_results(metadata: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per-seed results, from `seed_results` or from `seeds` written as a mapping (both occur)."""
    for key in ("seed_results", "seeds"):
        value = metadata.get(key)
        if isinstance(value, dict) and all(isinstance(r, dict) for r in value.values()):
            return value
    return {}
