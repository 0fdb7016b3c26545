"""Load a submission folder: which files are code, logs, metadata, README, requirements, other.

Loading reads names, sizes and submission.json only; no code of the submission is executed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import UserError

CODE, LOG, METADATA, README, REQUIREMENTS, OTHER = "code", "log", "metadata", "readme", "requirements", "other"
FILE_KINDS = (CODE, LOG, METADATA, README, REQUIREMENTS, OTHER)


@dataclass
class SubmissionFile:
    relpath: str  # path inside the folder, with "/" separators
    kind: str  # one of FILE_KINDS
    size: int  # bytes on disk (of the link itself for refused symlinks)
    refused: str | None = None  # why the harness will not read it (symlink outside, too large), or None


@dataclass
class Submission:
    path: Path
    files: list[SubmissionFile] = field(default_factory=list)
    metadata: dict[str, Any] | None = None  # parsed submission.json, None if missing or unreadable
    metadata_file: str | None = None  # relpath of the metadata file that was parsed
    metadata_error: str | None = None  # why submission.json could not be parsed

    def files_of(self, kind: str) -> list[SubmissionFile]:
        return [f for f in self.files if f.kind == kind and f.refused is None]

    def file(self, relpath: str) -> Path:
        return self.path / relpath

    def measurements(self) -> dict[str, Any]:
        raise NotImplementedError  # filled in by the submission-model work (issue 3)


def load_submission(folder: str | Path) -> Submission:
    path = Path(folder)
    if not path.exists():
        raise UserError("no such folder", path)
    if not path.is_dir():
        raise UserError("is not a folder; give the submission folder that holds submission.json", path)
    raise NotImplementedError  # filled in by the submission-model work (issue 3)
