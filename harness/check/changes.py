"""What a pull request changes, judged against the challenge's layout (R6.1: a pull request only adds
one new folder under records/<track>/): paths outside such a folder, existing records touched, how many
folders it adds, model weights, shards and large files. Plain data in (repository.Change), findings
out (check ids ci.*). Also: which record a new record is compared with (the main track's newest by the
date its folder name starts with), and the folder's findings restated with paths from the repository root.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath

from harness import rules
from harness.check.repository import SUBMODULE_MODE, Change, GitRepo
from harness.errors import UserError
from harness.findings import FAIL, PASS, SKIP, Evidence, Finding, finding
from harness.submission.folder import METADATA_FILE, parse_metadata

LISTED = 10  # findings of one kind before "and N more"
_DATED = re.compile(r"^(\d{4}-\d{2}-\d{2})_")
_TRACK_DIRS = ", ".join(f"{rules.RECORDS_DIR}/{track}/" for track in rules.TRACKS)
_VERBS = {"M": "modifies", "T": "changes the type of a file of", "D": "deletes a file of", "R": "renames a file out of",
          "A": "adds a file to"}


@dataclass
class ChangeReport:
    """The judgement of a pull request's changes: findings, and the new submission folders it adds."""

    findings: list[Finding] = field(default_factory=list)
    folders: list[str] = field(default_factory=list)  # records/<track>/<name>, sorted

    @property
    def folder(self) -> str | None:
        """The one folder to check, or None when the pull request adds none or several."""
        return self.folders[0] if len(self.folders) == 1 else None


def record_folders(repo: GitRepo, rev: str) -> set[str]:
    """Every records/<track>/<name> folder of a known track at a revision."""
    return {entry.path for track in rules.TRACKS for entry in repo.tree(rev, f"{rules.RECORDS_DIR}/{track}")
            if entry.kind == "tree"}


def judge_changes(changes: list[Change], existing: set[str]) -> ChangeReport:
    """ci.layout, ci.existing_record, ci.folders, ci.binary, ci.file_size for the changes between the
    base (whose record folders are `existing`) and the head."""
    outside, touched, added = [], [], set()
    for change in changes:
        if change.status == "R":  # the old path is gone from where it was
            _place(change.old_path, "R", change, existing, outside, touched, added)
        # a rename's or copy's new path is an addition there
        _place(change.path, "A" if change.status in "RC" else change.status, change, existing, outside, touched,
               added)
    report = ChangeReport(folders=sorted(added))
    if not changes:
        report.findings.append(finding("ci.layout", SKIP, "the pull request changes no file."))
    elif outside:
        report.findings += _listed(outside)
    else:
        report.findings.append(finding("ci.layout", PASS, f"all {len(changes)} changed path(s) lie inside "
                                       f"{report.folder or 'new folders'} under a known track.", paths=len(changes)))
    report.findings += _listed(touched) or [finding(
        "ci.existing_record", PASS, "no existing record is modified, renamed or deleted.")]
    report.findings.append(_folders_finding(report.folders))
    at_head = [c for c in changes if c.at_head and c.size is not None]
    report.findings += _binary_findings(at_head)
    report.findings += _size_findings(at_head)
    return report


def _place(path: str, status: str, change: Change, existing: set[str], outside: list[Finding],
           touched: list[Finding], added: set[str]) -> None:
    """Sort one path of a change: outside any submission folder, inside an existing record, or in a new folder."""
    folder, why = submission_folder_of(path)
    if folder is None:
        verb = {"D": "deleted", "R": "renamed", "A": "added"}.get(status, "changed")
        outside.append(finding(
            "ci.layout", FAIL, f"{path} is {verb} outside a submission folder ({why}); a pull request only adds "
            "one folder under records/<track>/ (R6.1): move this change into it or drop it.", file=path,
            git_status=status))
    elif folder in existing:
        touched.append(finding(
            "ci.existing_record", FAIL, f"{path}: {_VERBS.get(status, 'changes')} the existing record {folder}; "
            "a submission never changes an accepted record (R6.1): a fix goes in its own pull request.",
            file=path, git_status=status, record=folder))
    else:
        added.add(folder)
        if change.mode == SUBMODULE_MODE:
            outside.append(finding("ci.layout", FAIL, f"{path} is a git submodule: a submission holds its files "
                                   "(R6.1), not a link to another repository.", file=path, git_status=status))


def change_measurements(changes: list[Change]) -> dict:
    """How many paths changed, by git status (A, M, D, R, C, T); the findings name the ones that matter."""
    statuses: dict[str, int] = {}
    for change in changes:
        statuses[change.status] = statuses.get(change.status, 0) + 1
    return {"changed_paths": len(changes), "by_status": statuses}


def submission_folder_of(path: str) -> tuple[str | None, str]:
    """records/<track>/<name> for a path inside such a folder of a known track; else None and why not."""
    parts = PurePosixPath(path).parts
    if not parts or parts[0] != rules.RECORDS_DIR:
        return None, f"not under {rules.RECORDS_DIR}/"
    if len(parts) < 3 or parts[1] not in rules.TRACKS:
        return None, f"{'/'.join(parts[:2])}/ is not a track; the tracks are {_TRACK_DIRS}"
    if len(parts) < 4:
        return None, f"directly in {'/'.join(parts[:2])}/, not in a submission folder"
    return "/".join(parts[:3]), ""


def _folders_finding(folders: list[str]) -> Finding:
    if len(folders) == 1:
        return finding("ci.folders", PASS, f"adds one submission folder: {folders[0]}.", file=folders[0])
    if not folders:
        return finding("ci.folders", FAIL, f"adds no new folder under {_TRACK_DIRS}: there is no submission to "
                       "check (R6.1).")
    return Finding("ci.folders", FAIL, f"adds {len(folders)} submission folders ({', '.join(folders)}): one pull "
                   "request per submission (R6.1); split it.", [Evidence(file=folder) for folder in folders])


def _binary_findings(at_head: list[Change]) -> list[Finding]:
    """Weights and shards fail at any size, other binaries over rules.CI_MAX_BINARY_BYTES (harness policy)."""
    bad, small = [], []
    for change in at_head:
        suffix = PurePosixPath(change.path).suffix.lower()
        if suffix in rules.CI_WEIGHT_SUFFIXES:
            bad.append(finding(
                "ci.binary", FAIL, f"{change.path} is model weights or a data shard ({suffix}, {change.size:,} "
                "bytes): the artifact is what train_gpt.py rebuilds and the data is the challenge's export (R1.3); "
                "remove it.", file=change.path, bytes=change.size))
        elif change.binary and change.size > rules.CI_MAX_BINARY_BYTES:
            bad.append(finding(
                "ci.binary", FAIL, f"{change.path} is a binary file of {change.size:,} bytes, over the "
                f"{rules.CI_MAX_BINARY_BYTES:,}-byte limit for binaries in a pull request (harness policy); "
                "remove it.", file=change.path, bytes=change.size))
        elif change.binary:
            small.append(change)
    if bad:
        return _listed(bad)
    listed = f"; {len(small)} small binary file(s), each at most {rules.CI_MAX_BINARY_BYTES:,} bytes" if small else ""
    return [Finding("ci.binary", PASS, f"no model weights or data shards{listed}.",
                    [Evidence(file=c.path, values={"bytes": c.size}) for c in small[:LISTED]])]


def _size_findings(at_head: list[Change]) -> list[Finding]:
    large = [c for c in at_head if c.size > rules.CI_MAX_FILE_BYTES]
    if large:
        return _listed([finding(
            "ci.file_size", FAIL, f"{c.path} is {c.size:,} bytes, over the {rules.CI_MAX_FILE_BYTES:,}-byte limit "
            "for one file of a pull request (harness policy; accepted records' largest files are logs of about "
            "205 KB).", file=c.path, bytes=c.size) for c in large])
    if not at_head:
        return [finding("ci.file_size", SKIP, "no file is added or changed.")]
    largest = max(at_head, key=lambda c: c.size)
    return [finding("ci.file_size", PASS, f"every added or changed file is at most {rules.CI_MAX_FILE_BYTES:,} "
                    f"bytes (the largest: {largest.path}, {largest.size:,} bytes).", file=largest.path,
                    bytes=largest.size)]


def _listed(findings: list[Finding]) -> list[Finding]:
    """At most LISTED findings of one check, then one more saying how many were left out."""
    if len(findings) <= LISTED:
        return findings
    rest = findings[LISTED:]
    return findings[:LISTED] + [Finding(rest[0].check, rest[0].status, f"and {len(rest)} more such path(s), not "
                                        "listed one by one.", [])]


# -- the record a new record is compared with ----------------------------------------------------

def current_record(repo: GitRepo, rev: str) -> tuple[str | None, str]:
    """The main track's current record at a revision: the folder whose name starts with the newest date;
    of several that day, the one claiming the lowest val_bpb (the record). None when there is none."""
    names = sorted(repo.tree(rev, f"{rules.RECORDS_DIR}/{rules.RECORD_TRACK}"), key=lambda e: e.path)
    dated = [(match.group(1), entry.path) for entry in names if entry.kind == "tree"
             and (match := _DATED.match(PurePosixPath(entry.path).name))]
    if not dated:
        return None, f"no dated folder in {rules.RECORDS_DIR}/{rules.RECORD_TRACK}/ at {rev[:12]}"
    newest = max(date for date, _ in dated)
    candidates = [path for date, path in dated if date == newest]
    if len(candidates) == 1:
        return candidates[0], f"the newest record by the date in its name ({newest})"
    scored = sorted((_claimed_bpb(repo, rev, path), path) for path in candidates)
    return scored[0][1], (f"of the {len(candidates)} records dated {newest} (the newest date), the one claiming the "
                          "lowest val_bpb")


def _claimed_bpb(repo: GitRepo, rev: str, folder: str) -> float:
    raw = repo.read(rev, f"{folder}/{METADATA_FILE}")
    metadata = parse_metadata(raw)[0] if raw is not None else None
    value = (metadata or {}).get("val_bpb")
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else float("inf")


def choose_current_record(repo: GitRepo, base: str, folder: str, given: str | None,
                          scratch: Path) -> tuple[str | None, Finding]:
    """The folder `check` compares the submission's scores with (R5.1), and the ci.current_record finding
    that names it: `given` (a folder on disk, or a folder of the base revision), else for a folder on the
    main track the track's current record at base, written out under scratch."""
    if given is not None:
        if Path(given).is_dir():
            return given, finding("ci.current_record", PASS, f"compared with {given} (--current-record).",
                                  file=given)
        if not repo.tree(base, given):
            raise UserError(f"--current-record: no such folder on disk, nor in the repository at {base[:12]}", given)
        return str(repo.export(base, given.rstrip("/"), scratch)), finding(
            "ci.current_record", PASS, f"compared with {given} at {base[:12]} (--current-record).", file=given)
    if PurePosixPath(folder).parts[1] != rules.RECORD_TRACK:
        return None, finding("ci.current_record", SKIP, f"not a folder of {rules.RECORDS_DIR}/{rules.RECORD_TRACK}/: "
                             "no comparison with the current record.")
    record, how = current_record(repo, base)
    if record is None:
        return None, finding("ci.current_record", SKIP, f"{how}: no comparison with a current record.")
    return str(repo.export(base, record, scratch)), finding(
        "ci.current_record", PASS, f"compared with {record}, {how}, at {base[:12]}.", file=record)


# -- the folder's findings, told from the repository root ------------------------------------------

def checked_finding(folder: str, scanned_nothing: bool, findings: list[Finding]) -> Finding:
    """ci.checked: a folder in which no code could be scanned, or whose check found nothing to pass,
    never passes the gate."""
    if scanned_nothing:
        return finding("ci.checked", FAIL, f"nothing in {folder} could be scanned: no Python code that runs was "
                       f"found, or none parses; the gate cannot pass a folder it could not check.", file=folder)
    passed = sum(1 for f in findings if f.status == PASS)
    return finding("ci.checked", PASS, f"{folder} was checked: {passed} check(s) passed, code scanned.", file=folder)


def in_repository(findings: list[Finding], folder: str) -> list[Finding]:
    """The folder's findings with each evidence file given from the repository root (folder/relpath), as
    annotations and the pull request's reviewers name them. Paths that already are (or are absolute)
    stay as they are."""
    def moved(evidence: Evidence) -> Evidence:
        name = evidence.file
        if name is None or name.startswith(("/", f"{folder}/")):
            return evidence
        return replace(evidence, file=f"{folder}/{name}")
    return [replace(f, evidence=[moved(e) for e in f.evidence]) for f in findings]
