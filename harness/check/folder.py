"""The static checks of a loaded submission folder: required files, refused files, submission.json
(parse, schema, unknown keys), the counted code (bytes, syntax), other code, requirements, track.

Each check returns findings with a stable id; nothing here imports or executes the submission's code
(its files are only read and parsed with `ast`). The counted code is the submission's script
(`script.counted_script`: train_gpt.py, or the file the logs show running) with the files it runs.
"""

from __future__ import annotations

import ast
import io
import re
import sys
import tokenize

from harness import rules
from harness.errors import UserError
from harness.findings import FAIL, PASS, SKIP, WARN, Evidence, Finding, finding
from harness.schemas import load_schema, validation_errors
from harness.submission.folder import CODE, LOG, METADATA, METADATA_FILE, README, REQUIREMENTS, Submission
from harness.submission.logs import parse_submission_logs
from harness.submission.script import NAMED, CountedScript, counted_script, holds_no_code, parsed_file

PYTHON = f"Python {sys.version_info.major}.{sys.version_info.minor}"
_REQUIREMENT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_LISTED = 5  # files named in one message before "and N more"


def check_folder(submission: Submission) -> list[Finding]:
    findings: list[Finding] = []
    for check in (check_required_files, check_refused_files, check_metadata, check_code_bytes, check_code_syntax,
                  check_other_code, check_requirements, check_track):
        findings.extend(check(submission))
    return findings


# -- files ----------------------------------------------------------------------------------------

def check_required_files(submission: Submission) -> list[Finding]:
    """R6.1: README.md, submission.json, a train log and train_gpt.py, each reported on its own."""
    return [_required_readme(submission), _required_metadata(submission), _required_log(submission),
            _required_code(submission)]


def _required_readme(submission: Submission) -> Finding:
    readmes = [f for f in submission.files if f.kind == README]
    if not readmes:
        return finding("files.required", FAIL, "README.md is missing (R6.1: it explains the submission).", file="README.md")
    return _present_or_refused(readmes[0], "README.md")


def _required_metadata(submission: Submission) -> Finding:
    entry = submission.entry(METADATA_FILE)
    if entry is not None:
        return _present_or_refused(entry, METADATA_FILE)
    variants = [f.relpath for f in submission.files if f.kind == METADATA]
    if variants:
        return finding("files.required", WARN,
                       f"{METADATA_FILE} is missing; read {submission.metadata_file} instead "
                       f"(accepted records use such names too, R6.1 asks for {METADATA_FILE}).",
                       file=submission.metadata_file, candidates=variants)
    return finding("files.required", FAIL, f"{METADATA_FILE} is missing (R6.1: name, GitHub id, val_bpb).",
                   file=METADATA_FILE)


def _required_log(submission: Submission) -> Finding:
    logs = submission.files_of(LOG)
    text_logs = [f.relpath for f in logs if not f.binary]
    binary_logs = [f.relpath for f in logs if f.binary]
    if not logs:
        return finding("files.required", FAIL,
                       "no train log (*.log, or *.txt named log/train/seed) (R6.1: the logs the script produced).")
    if not text_logs:
        return finding("files.required", FAIL, f"no readable train log: {_names(binary_logs)} is not text.",
                       file=binary_logs[0], binary=binary_logs)
    if binary_logs:
        return finding("files.required", WARN,
                       f"{len(text_logs)} train log(s), but {_names(binary_logs)} is not text.",
                       file=binary_logs[0], logs=text_logs, binary=binary_logs)
    return Finding("files.required", PASS, f"{len(text_logs)} train log(s).",
                   [Evidence(file=relpath) for relpath in text_logs])


def _required_code(submission: Submission) -> Finding:
    entry = submission.entry(rules.COUNTED_CODE_FILE)
    if entry is not None and entry.refused is None and holds_no_code(submission, entry.relpath):
        return finding("files.required", FAIL, f"{rules.COUNTED_CODE_FILE} is present but holds no code ({entry.size:,} "
                       "bytes: blank, comments or a docstring): nothing would run (R2.4).", file=entry.relpath,
                       bytes=entry.size)
    if entry is not None:
        return _present_or_refused(entry, rules.COUNTED_CODE_FILE)
    script = _script(submission)
    if script.relpath is not None:
        return finding("files.required", WARN, f"{rules.COUNTED_CODE_FILE} is missing; the counted code is "
                       f"{script.reason} (R1.2 and R2.4 ask for {rules.COUNTED_CODE_FILE}).", file=script.relpath,
                       how=script.how, logs=script.logs or None)
    others = [f.relpath for f in submission.files_of(CODE)]
    also = f"; other code here: {_names(others)}" if others else ""
    return finding("files.required", FAIL,
                   f"{rules.COUNTED_CODE_FILE} is missing: the challenge runs it and counts its bytes (R1.2, R2.4){also}.",
                   file=rules.COUNTED_CODE_FILE)


def _present_or_refused(entry, role: str) -> Finding:
    if entry.refused:
        return finding("files.required", FAIL, f"{role} is present but refused: {entry.refused}.", file=entry.relpath)
    return finding("files.required", PASS, f"{role} is present.", file=entry.relpath, bytes=entry.size)


def check_refused_files(submission: Submission) -> list[Finding]:
    refused = submission.refused_files()
    if not refused:
        return [finding("files.refused", PASS,
                        f"all {len(submission.files)} files are regular files inside the folder, readable, "
                        f"at most {rules.MAX_FILE_BYTES:,} bytes.", files=len(submission.files))]
    return [finding("files.refused", FAIL, f"{f.relpath} is refused: {f.refused}.", file=f.relpath, bytes=f.size)
            for f in refused]


def check_requirements(submission: Submission) -> list[Finding]:
    """Extra packages are free, but must not bring in outside code or data (R1.2, R1.3): plain package
    names pass; index URLs, VCS or path installs, and includes are a warning for a reviewer."""
    files = submission.files_of(REQUIREMENTS)
    if not files:
        return [finding("files.requirements", PASS, "no requirements.txt: no extra packages declared.")]
    relpath = files[0].relpath
    try:
        text = submission.read_text(relpath)
    except UserError as error:
        return [finding("files.requirements", SKIP, f"requirements.txt could not be read: {error}.", file=relpath)]
    packages, unusual = [], []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split(" #")[0].strip()
        if not line or line.startswith("#"):
            continue
        name = _REQUIREMENT_NAME.match(line)
        if line.startswith("-") or "://" in line or " @ " in line or name is None:
            unusual.append((number, line))
        else:
            packages.append(name.group())
    if unusual:
        number, line = unusual[0]
        return [finding("files.requirements", WARN,
                        f"requirements.txt installs from outside the package index or adds options ({len(unusual)} line(s)): "
                        f"check it brings no code or data outside the cap (R1.3).",
                        file=relpath, line=number, excerpt=line, packages=packages)]
    return [finding("files.requirements", PASS,
                    f"requirements.txt lists {len(packages)} extra package(s).",
                    file=relpath, packages=packages)]


def check_track(submission: Submission) -> list[Finding]:
    """R2.3: records/track_10min_16mb is the record track, records/track_non_record_16mb the other."""
    folder_track, declared = submission.track(), submission.declared_track()
    raw = (submission.metadata or {}).get("track")
    if folder_track is None:
        said = f"; {submission.metadata_file} says {raw!r}" if isinstance(raw, str) else ""
        return [finding("track", SKIP, f"the folder is not under records/<track>/, so its track is not known{said}.")]
    kind = "record" if folder_track == rules.RECORD_TRACK else "non-record"
    if declared is not None and declared != folder_track:
        return [finding("track", WARN, f"the folder is under records/{folder_track}/ but {submission.metadata_file} "
                        f"says track {raw!r}.", file=submission.metadata_file, folder_track=folder_track)]
    return [finding("track", PASS, f"{kind} track: the folder is under records/{folder_track}/.", track=folder_track)]


# -- submission.json ------------------------------------------------------------------------------

def check_metadata(submission: Submission) -> list[Finding]:
    parsed = _check_metadata_parse(submission)
    if submission.metadata is None:
        reason = "not parsed (see metadata.parse)" if submission.metadata_file else "no submission.json"
        return [parsed] + [finding(check, SKIP, f"{METADATA_FILE} {reason}.")
                           for check in ("metadata.schema", "metadata.unknown_keys", "metadata.readme_fields")]
    return [parsed, *_check_schema(submission), _check_unknown_keys(submission), _check_readme_fields(submission)]


def _check_metadata_parse(submission: Submission) -> Finding:
    name = submission.metadata_file
    if name is None:
        return finding("metadata.parse", SKIP, f"no {METADATA_FILE} to parse.")
    if submission.metadata_error is not None:
        return finding("metadata.parse", FAIL, f"{name} is not a valid JSON object: {submission.metadata_error}.",
                       file=name, line=submission.metadata_error_line)
    if submission.metadata_warnings:
        return finding("metadata.parse", WARN, f"{name} parsed, but " + "; ".join(submission.metadata_warnings) + ".",
                       file=name)
    return finding("metadata.parse", PASS, f"{name} parsed: a JSON object with {len(submission.metadata)} key(s).", file=name)


def _check_schema(submission: Submission) -> list[Finding]:
    errors = validation_errors(submission.metadata, "submission")
    if not errors:
        return [finding("metadata.schema", PASS, f"{submission.metadata_file} matches harness/schemas/submission.schema.json.",
                        file=submission.metadata_file)]
    return [finding("metadata.schema", FAIL, error, file=submission.metadata_file, json_path=error.split(": ", 1)[0])
            for error in errors]


def _check_unknown_keys(submission: Submission) -> Finding:
    known = load_schema("submission")["properties"]
    unknown = sorted(key for key in submission.metadata if key not in known)
    if not unknown:
        return finding("metadata.unknown_keys", PASS, "every key is one the schema knows.", file=submission.metadata_file)
    return finding("metadata.unknown_keys", WARN,
                   f"{len(unknown)} key(s) the schema does not know (allowed, not checked).",
                   file=submission.metadata_file, keys=unknown)


def _check_readme_fields(submission: Submission) -> Finding:
    """The README asks for name, GitHub id and val_bpb; accepted records lack some, hence a warning."""
    missing = [key for key in rules.SUBMISSION_README_KEYS if key not in submission.metadata]
    if not missing:
        return finding("metadata.readme_fields", PASS, "states name, github_id and val_bpb (R6.1).",
                       file=submission.metadata_file)
    return finding("metadata.readme_fields", WARN, f"lacks {', '.join(missing)}, which R6.1 asks submission.json to state.",
                   file=submission.metadata_file, missing=missing)


# -- code -----------------------------------------------------------------------------------------

def check_code_bytes(submission: Submission) -> list[Finding]:
    """R1.2: the counted code is the submission's script (train_gpt.py, or the file its logs show running:
    script.counted_script) with the files of the folder it runs; it should be UTF-8 Python source that
    does something."""
    script = _script(submission)
    if script.relpath is None:
        return [finding("code.bytes", SKIP, _missing_reason(submission), file=rules.COUNTED_CODE_FILE)]
    relpath = script.relpath
    raw = submission.read_bytes(relpath)
    total = script.total_bytes
    values = {"bytes": len(raw), "lines": raw.count(b"\n") + (0 if raw.endswith(b"\n") or not raw else 1)}
    if script.runs:
        values.update(counted_bytes=total, runs=[f"{r.relpath} ({r.bytes:,} bytes, {r.how} at {r.by})" for r in script.runs])
    if total >= rules.ARTIFACT_CAP_BYTES:
        return [finding("code.bytes", FAIL, f"{_counted(script)} alone is {total:,} bytes, not under the "
                        f"{rules.ARTIFACT_CAP_BYTES:,}-byte cap (R1.1).", file=relpath, **values)]
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line = raw.count(b"\n", 0, error.start) + 1
        declared = _declared_encoding(raw)
        if declared and declared != "utf-8":
            return [finding("code.bytes", WARN, f"{relpath} is {len(raw):,} bytes of {declared} text (PEP 263 "
                            f"declaration), not UTF-8.", file=relpath, line=line, utf8=False, **values)]
        return [finding("code.bytes", FAIL, f"{relpath} is {len(raw):,} bytes but not UTF-8 text "
                        f"(byte 0x{raw[error.start]:02x} on line {line}).", file=relpath, line=line, utf8=False,
                        **values)]
    if holds_no_code(submission, relpath):
        return [finding("code.bytes", FAIL, f"{relpath} is {len(raw):,} bytes with no code in it (blank, comments or "
                        "a docstring): an empty script is not a submission (R2.4).", file=relpath, utf8=True, **values)]
    notes = []
    if script.how != NAMED:
        missing = submission.counted_code() is None
        notes.append(f"{rules.COUNTED_CODE_FILE} is missing; the counted code is {script.reason}" if missing else
                     f"the counted code is {script.reason}, not {rules.COUNTED_CODE_FILE}, which is not the script "
                     "that ran")
    if script.runs:
        ran = ", ".join(f"{r.relpath} ({r.bytes:,} bytes, by {r.how} at {r.by})" for r in script.runs)
        notes.append(f"{relpath} ({len(raw):,} bytes) runs {ran}: {total:,} bytes counted together, since "
                     f"what runs counts (R1.2 asks for all of it in {rules.COUNTED_CODE_FILE})")
    if notes:
        return [finding("code.bytes", WARN, "; ".join(notes) + ".", file=relpath, utf8=True, **values)]
    return [finding("code.bytes", PASS, f"{relpath} is {len(raw):,} bytes of UTF-8 text (the counted code, R1.2).",
                    file=relpath, utf8=True, **values)]


def check_code_syntax(submission: Submission) -> list[Finding]:
    """R2.4: the script and the files it runs must compile. Parsed with `ast` only: never imported, never run."""
    script = _script(submission)
    if script.relpath is None:
        return [finding("code.syntax", SKIP, _missing_reason(submission), file=rules.COUNTED_CODE_FILE)]
    if script.total_bytes >= rules.ARTIFACT_CAP_BYTES:
        return [finding("code.syntax", SKIP, f"{script.relpath} is over the cap; not parsed.", file=script.relpath)]
    if holds_no_code(submission, script.relpath):
        return [finding("code.syntax", SKIP, f"{script.relpath} holds no code to parse (see code.bytes).",
                        file=script.relpath)]
    for relpath in [script.relpath, *(r.relpath for r in script.runs)]:
        raw = submission.read_bytes(relpath)
        if _utf8(raw) and parsed_file(submission, relpath) is not None:
            continue  # UTF-8 text that script.parsed_file parsed already
        try:
            ast.parse(raw, filename=relpath)  # bytes: honours a PEP 263 declaration and a BOM
        except SyntaxError as error:
            excerpt = (error.text or "").strip() or None
            return [finding("code.syntax", FAIL, f"{relpath} does not parse under {PYTHON}: {error.msg}.",
                            file=relpath, line=error.lineno if error.lineno and error.lineno > 0 else None,
                            excerpt=excerpt)]
        except (ValueError, RecursionError, MemoryError) as error:
            return [finding("code.syntax", FAIL, f"{relpath} cannot be parsed under {PYTHON}: {error}.", file=relpath)]
    also = f" and the {len(script.runs)} file(s) it runs" if script.runs else ""
    return [finding("code.syntax", PASS, f"{script.relpath}{also} parse(s) under {PYTHON} (checked statically, not run).",
                    file=script.relpath)]


def check_other_code(submission: Submission) -> list[Finding]:
    """R1.2: only the counted code is counted; other code files are listed with their sizes for a reviewer."""
    script = _script(submission)
    counted = {script.relpath, *(r.relpath for r in script.runs)} - {None}
    others = [f for f in submission.files_of(CODE) if f.relpath not in counted]
    name = _counted(script) if script.relpath else rules.COUNTED_CODE_FILE
    if not others:
        return [finding("code.other_files", PASS, f"no code besides {name}.")]
    total = sum(f.size for f in others)
    message = (f"{len(others)} other code file(s), {total:,} bytes, are not counted: only {name} "
               f"is (R1.2); code it uses should live in it.")
    return [Finding("code.other_files", WARN, message,
                    [Evidence(file=f.relpath, values={"bytes": f.size}) for f in others])]


def _script(submission: Submission) -> CountedScript:
    return counted_script(submission, parse_submission_logs(submission))


def _counted(script: CountedScript) -> str:
    return script.relpath if not script.runs else f"{script.relpath} with the {len(script.runs)} file(s) it runs"


def _missing_reason(submission: Submission) -> str:
    listed = submission.entry(rules.COUNTED_CODE_FILE)
    if listed is not None and listed.refused is not None:
        return f"{rules.COUNTED_CODE_FILE} is refused (see files.refused)."
    return f"{rules.COUNTED_CODE_FILE} is missing and no other script is known to run (see files.required)."


def _utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _declared_encoding(raw: bytes) -> str | None:
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(raw).readline)
    except SyntaxError:
        return None
    return encoding


def _names(relpaths: list[str]) -> str:
    shown = ", ".join(relpaths[:_LISTED])
    return shown + (f" and {len(relpaths) - _LISTED} more" if len(relpaths) > _LISTED else "")
