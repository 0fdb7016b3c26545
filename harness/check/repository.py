"""A git repository read without its work tree: what changed between two revisions, the folders of a
revision, a file's bytes, and one folder of a revision written to disk for `check`.

Git runs through subprocess (git is the harness's tool, not a submission). Diffs are taken with
external diff drivers and text conversion off: a repository's config is the maintainers', but the
.gitattributes a pull request adds are not. Every git failure a user can cause (no repository, an
unknown revision) is a UserError naming the repository and the revision.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from harness import rules
from harness.errors import UserError

SYMLINK_MODE = "120000"
SUBMODULE_MODE = "160000"
_NO_BLOB = "0" * 40
# Git settings for reading: paths as bytes-faithful text, no pager, no prompt.
_GIT_OPTIONS = ("-c", "core.quotepath=off", "--no-pager")


@dataclass(frozen=True)
class Change:
    """One path a pull request changes, as `git diff --raw --numstat -M` between base and head sees it."""

    status: str  # A added, M modified, D deleted, R renamed, C copied, T type changed
    path: str  # the path at head; for D, the deleted path
    old_path: str | None = None  # R and C: the path at base
    mode: str = "100644"  # at head: 100644/100755 file, 120000 symlink, 160000 submodule, 000000 deleted
    blob: str = _NO_BLOB  # at head
    size: int | None = None  # bytes at head; None when deleted or a submodule
    binary: bool = False  # git's own test (a NUL byte in the first 8000 bytes, or .gitattributes)

    @property
    def at_head(self) -> bool:
        return self.status != "D"


@dataclass(frozen=True)
class TreeEntry:
    mode: str
    kind: str  # blob, tree, commit (a submodule)
    blob: str
    size: int | None
    path: str


class GitRepo:
    """A repository on disk (a work tree or a bare one), read through `git -C PATH`."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.is_dir():
            raise UserError("no such folder (give the repository with --repo)", self.path)
        self._git("rev-parse", "--git-dir", what="is not a git repository")

    def _git(self, *args: str, what: str, stdin: bytes | None = None, stdout=None) -> bytes:
        """Run git here; its output, or with `stdout` (an open file) streamed there. A failure is the
        user's (a wrong revision, not a repository): a UserError with git's last line."""
        command = ["git", *_GIT_OPTIONS, "-C", str(self.path), *args]
        env = dict(os.environ, GIT_TERMINAL_PROMPT="0", LC_ALL="C")
        try:
            done = subprocess.run(command, input=stdin, stdout=stdout or subprocess.PIPE, stderr=subprocess.PIPE,
                                  env=env, check=False)
        except FileNotFoundError:
            raise UserError("git is not installed; `harness ci` reads the pull request with git", self.path) from None
        if done.returncode != 0:
            reason = done.stderr.decode("utf-8", "replace").strip().splitlines()
            raise UserError(f"{what} ({reason[-1] if reason else f'git exited {done.returncode}'})", self.path)
        return done.stdout or b""

    def commit(self, ref: str) -> str:
        """The commit a revision names (a branch, tag, SHA, HEAD^1, @{upstream})."""
        if not ref or ref.startswith("-"):
            raise UserError(f"{ref!r} is not a revision", self.path)
        try:
            out = self._git("rev-parse", "--verify", "--end-of-options", f"{ref}^{{commit}}",
                            what=f"no commit {ref!r} in this repository")
        except UserError as error:
            if self._git("rev-parse", "--is-shallow-repository", what="git rev-parse failed").strip() == b"true":
                raise UserError(f"no commit {ref!r} in this shallow clone: fetch the history (e.g. fetch-depth: 0)",
                                self.path) from None
            raise error
        return out.decode().strip()

    def upstream(self) -> str:
        """For `harness ci --local`: the branch HEAD forked from: the upstream it tracks (@{upstream}),
        else origin/main; a candidate that already holds HEAD (the branch pushed to its own copy) is
        skipped, since against it nothing would be new."""
        head = self.commit("HEAD")
        for ref in ("@{upstream}", "origin/main"):
            try:
                if self.merge_base(self.commit(ref), head) != head:
                    return ref
            except UserError:
                continue
        raise UserError("found no upstream branch that lacks HEAD's commits (tried @{upstream} and origin/main): "
                        "give --base REF", self.path)

    def merge_base(self, base: str, head: str) -> str:
        """Where head forked from base: the pull request's changes are those since then."""
        out = self._git("merge-base", base, head, what=f"{base[:12]} and {head[:12]} share no history here (a "
                        "shallow clone? fetch the whole history, e.g. fetch-depth: 0)")
        return out.decode().split()[0]

    def changes(self, base: str, head: str) -> list[Change]:
        """Every path that differs between two commits, renames found (-M), with sizes and binary flags."""
        diff = ["diff", "--no-ext-diff", "--no-textconv", "-M", "-z"]
        raw = self._git(*diff, "--raw", "--no-abbrev", base, head, "--", what="git diff failed")
        numstat = self._git(*diff, "--numstat", base, head, "--", what="git diff failed")
        binary = _binary_paths(numstat)
        found = _parse_raw(raw)
        sizes = self._sizes([c.blob for c in found if c.blob != _NO_BLOB and c.mode != SUBMODULE_MODE])
        changes = []
        for change in found:
            size = sizes.get(change.blob) if change.at_head and change.mode != SUBMODULE_MODE else None
            changes.append(Change(change.status, change.path, change.old_path, change.mode, change.blob, size,
                                  change.path in binary))
        return changes

    def _sizes(self, blobs: list[str]) -> dict[str, int]:
        if not blobs:
            return {}
        out = self._git("cat-file", "--batch-check", what="git cat-file failed",
                        stdin="".join(f"{blob}\n" for blob in blobs).encode())
        sizes = {}
        for line in out.decode().splitlines():
            parts = line.split()
            if len(parts) == 3 and parts[1] == "blob":
                sizes[parts[0]] = int(parts[2])
        return sizes

    def tree(self, rev: str, folder: str, recursive: bool = False) -> list[TreeEntry]:
        """The entries of a folder at a revision (its files and folders; recursive: every file below)."""
        return self._ls_tree(rev, f"{folder.rstrip('/')}/", recursive)

    def read(self, rev: str, path: str) -> bytes | None:
        """A file's bytes at a revision, or None when it is not a file there."""
        blobs = [e.blob for e in self._ls_tree(rev, path) if e.path == path and e.kind == "blob"]
        if not blobs:
            return None
        return self._git("cat-file", "blob", blobs[0], what=f"cannot read {path} at {rev[:12]}")

    def _ls_tree(self, rev: str, pathspec: str, recursive: bool = False) -> list[TreeEntry]:
        args = ["ls-tree", "--full-tree", "-z", "-l", *(["-r"] if recursive else []), rev, "--", pathspec]
        out = self._git(*args, what=f"cannot list {pathspec} at {rev[:12]}")
        entries = []
        for record in out.decode("utf-8", "surrogateescape").split("\0"):
            if not record:
                continue
            meta, name = record.split("\t", 1)
            mode, kind, blob, size = meta.split()
            entries.append(TreeEntry(mode, kind, blob, int(size) if size != "-" else None, name))
        return entries

    def export(self, rev: str, folder: str, dest: Path) -> Path:
        """Write `folder` as it is at `rev` to dest/folder (the repository's layout kept, so the track
        is still the parent's name) and return that path. Files over the harness's file limit are
        written as sparse files of their size: `check` refuses them by size without reading them."""
        root = dest.resolve()
        target = root / folder
        target.mkdir(parents=True, exist_ok=True)
        for entry in self.tree(rev, folder, recursive=True):
            path = Path(os.path.normpath(root / entry.path))
            if not (_inside(root, path.parent) and _inside(root, path.parent.resolve())):
                raise UserError(f"refusing the path {entry.path!r} at {rev[:12]}: it leaves the folder", self.path)
            path.parent.mkdir(parents=True, exist_ok=True)
            if entry.kind != "blob":
                continue  # a submodule has no files here; ci.layout reports it
            if entry.mode == SYMLINK_MODE:
                target_text = self._git("cat-file", "blob", entry.blob, what=f"cannot read {entry.path}")
                os.symlink(os.fsdecode(target_text), path)  # `check` refuses links without following them
            elif entry.size is not None and entry.size > rules.MAX_FILE_BYTES:
                with path.open("wb") as stream:
                    stream.truncate(entry.size)
            else:
                with path.open("wb") as stream:
                    self._git("cat-file", "blob", entry.blob, what=f"cannot read {entry.path}", stdout=stream)
        return target


def _inside(root: Path, path: Path) -> bool:
    return path == root or root in path.parents


def _parse_raw(out: bytes) -> list[Change]:
    """`git diff --raw -z`: ":old_mode new_mode old_blob new_blob STATUS\\0path\\0" (R and C: two paths)."""
    tokens = out.decode("utf-8", "surrogateescape").split("\0")
    changes, index = [], 0
    while index < len(tokens) and tokens[index].startswith(":"):
        _, mode, _, blob, status = tokens[index][1:].split()
        letter = status[0]
        if letter in "RC":
            old_path, path = tokens[index + 1], tokens[index + 2]
            index += 3
        else:
            old_path, path = None, tokens[index + 1]
            index += 2
        changes.append(Change(letter, path, old_path, mode, blob))
    return changes


def _binary_paths(out: bytes) -> set[str]:
    """The paths (at head) `git diff --numstat -z` counts no lines for ("-" and "-"): git's binary files.
    Each record is "added TAB deleted TAB path NUL", or for a rename or copy "added TAB deleted TAB NUL
    old NUL new NUL"."""
    tokens = out.decode("utf-8", "surrogateescape").split("\0")
    binary, index = set(), 0
    while index < len(tokens) and tokens[index]:
        added, deleted, path = tokens[index].split("\t", 2)
        index += 1
        if not path:
            path = tokens[index + 1]
            index += 2
        if added == "-" and deleted == "-":
            binary.add(path)
    return binary
