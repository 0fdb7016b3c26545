"""Small submission folders written into tmp_path for the submission-model and `harness check` tests."""

from __future__ import annotations

import json
from pathlib import Path

GOOD_CODE = "import math\n\n\ndef main():\n    print(math.pi)\n\n\nif __name__ == '__main__':\n    main()\n"
GOOD_METADATA = {
    "name": "Tiny test submission",
    "author": "Test Author",
    "github_id": "test-author",
    "date": "2026-03-19",
    "val_bpb": 1.2345,
    "val_loss": 2.0842,
    "bytes_total": 15_000_000,
    "bytes_code": len(GOOD_CODE.encode()),
    "seeds": [1337],
}
GOOD_LOG = (
    "seed:1337\nstep:100/200 train_loss:2.5000\nstep:200/200 val_loss:2.0842 val_bpb:1.2345\n"
    "final_int8_zlib_roundtrip_exact val_loss:2.08420000 val_bpb:1.23450000\n"
)
GOOD_README = "# Tiny test submission\n\nExplains what it does.\n"


def write_submission(folder: Path, *, metadata: dict | str | bytes | None = None, code: str | bytes | None = None,
                     log: str | bytes | None = None, readme: str | None = None, extra: dict[str, str | bytes] | None = None,
                     omit: tuple[str, ...] = ()) -> Path:
    """A complete, valid folder (README.md, submission.json, train.log, train_gpt.py) unless told otherwise:
    `omit` drops files by name, the keyword arguments replace their contents, `extra` adds files."""
    folder.mkdir(parents=True, exist_ok=True)
    if metadata is None:  # the good metadata, stating the bytes of whatever code this folder gets
        code_size = len(code if isinstance(code, bytes) else (GOOD_CODE if code is None else code).encode())
        metadata = dict(GOOD_METADATA, bytes_code=code_size)
    files: dict[str, str | bytes] = {
        "README.md": GOOD_README if readme is None else readme,
        "submission.json": metadata if isinstance(metadata, (str, bytes)) else json.dumps(metadata, indent=2),
        "train.log": GOOD_LOG if log is None else log,
        "train_gpt.py": GOOD_CODE if code is None else code,
    }
    files.update(extra or {})
    for relpath, content in files.items():
        if relpath in omit:
            continue
        path = folder / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
    return folder
