"""Subcommands whose stage is not built yet say so plainly and exit 2: they never pass silently."""

from __future__ import annotations

from rich.console import Console


def not_implemented(command: str, what: str):
    def handler(args) -> int:
        Console(stderr=True).print(
            f"[bold red]harness {command}: not implemented yet[/] — {what}. Nothing was checked.",
            highlight=False,
        )
        return 2

    return handler
