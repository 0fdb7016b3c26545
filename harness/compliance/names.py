"""Canonical dotted names: what `F.cross_entropy` or `L.decompress` refers to, through a file's imports.

`import torch.nn.functional as F` makes `F.cross_entropy` read as `torch.nn.functional.cross_entropy`;
`from torch.optim import SGD as S` makes `S` read as `torch.optim.SGD`. Names that are not imported
(builtins, locals, attributes of values) come back as written, dotted.
"""

from __future__ import annotations

import ast


def import_aliases(tree: ast.AST) -> dict[str, str]:
    """Every name an import binds anywhere in the file (imports inside functions count too)."""
    aliases: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    aliases[alias.asname] = alias.name
                else:
                    head = alias.name.split(".")[0]
                    aliases[head] = head
        elif isinstance(node, ast.ImportFrom):
            module = "." * node.level + (node.module or "")
            for alias in node.names:
                if alias.name != "*":
                    aliases[alias.asname or alias.name] = f"{module}.{alias.name}" if module else alias.name
    return aliases


def dotted_parts(node: ast.expr) -> list[str] | None:
    """["F", "cross_entropy"] for F.cross_entropy; None when the chain does not start at a name."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(node.id)
    return parts[::-1]


def canonical(node: ast.expr, aliases: dict[str, str]) -> str | None:
    parts = dotted_parts(node)
    if parts is None:
        return None
    head = aliases.get(parts[0], parts[0])
    return ".".join([head, *parts[1:]])


def last_name(name: str | None) -> str:
    return name.rsplit(".", 1)[-1] if name else ""
