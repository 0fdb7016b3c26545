"""Errors a user can cause (bad folder, bad JSON, bad shard, missing GPU).

They are raised with one sentence that names the file and says what to do; the command line prints
that sentence and exits with status 2. Bugs are other exceptions and still raise.
"""

from __future__ import annotations


class UserError(Exception):
    """A problem with the user's input, told in one sentence naming the file."""

    def __init__(self, message: str, path: object | None = None) -> None:
        self.path = None if path is None else str(path)
        super().__init__(f"{self.path}: {message}" if self.path else message)
