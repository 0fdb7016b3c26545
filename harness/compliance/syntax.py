"""Small questions about syntax trees that the data-flow pass and the detectors ask."""

from __future__ import annotations

import ast


def walk_local(node: ast.AST):
    """ast.walk that does not enter nested defs or lambdas (they are analysed on their own)."""
    todo = [node]
    while todo:
        current = todo.pop()
        yield current
        for child in ast.iter_child_nodes(current):
            if not isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
                todo.append(child)


def assigned_names(body: list[ast.stmt]) -> set[str]:
    names = set()
    for stmt in body:
        for node in walk_local(stmt):
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                names.add(node.id)
    return names


def is_self(node: ast.expr) -> bool:
    return isinstance(node, ast.Name) and node.id in ("self", "cls")


def is_static(node: ast.AST) -> bool:
    return any(isinstance(d, ast.Name) and d.id == "staticmethod" for d in getattr(node, "decorator_list", []))


def is_shift(node: ast.expr) -> bool:
    """[1:] or [..., 1:] / [:, 1:]: the targets of a token stream."""
    if isinstance(node, ast.Tuple) and node.elts:
        node = node.elts[-1]
    return (isinstance(node, ast.Slice) and isinstance(node.lower, ast.Constant) and node.lower.value == 1
            and node.upper is None)


def returned_objects(node: ast.expr) -> set[str]:
    """return x / return x.detach() / return a, b.clone(): the objects handed back (not values derived
    from them)."""
    if isinstance(node, ast.Tuple):
        return set().union(*(returned_objects(e) for e in node.elts)) if node.elts else set()
    while isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and not node.args:
        node = node.func.value
    return {node.id} if isinstance(node, ast.Name) else set()


def drops_last(node: ast.expr) -> bool:
    """[:-1]"""
    if not (isinstance(node, ast.Slice) and node.lower is None and node.upper is not None):
        return False
    upper = node.upper
    return (isinstance(upper, ast.UnaryOp) and isinstance(upper.op, ast.USub) and isinstance(upper.operand, ast.Constant)
            and upper.operand.value == 1) or (isinstance(upper, ast.Constant) and upper.value == -1)


def last_index(node: ast.Subscript) -> ast.expr:
    index = node.slice
    return index.elts[-1] if isinstance(index, ast.Tuple) and index.elts else index


def linear(node: ast.expr) -> tuple[str, int]:
    """t + 1 -> (dump(t), 1); t -> (dump(t), 0); t - 2 -> (dump(t), -2)."""
    if isinstance(node, ast.BinOp) and isinstance(node.right, ast.Constant) and isinstance(node.right.value, int):
        var, offset = linear(node.left)
        if isinstance(node.op, ast.Add):
            return var, offset + node.right.value
        if isinstance(node.op, ast.Sub):
            return var, offset - node.right.value
    return ast.dump(node), 0


def write_mode(node: ast.Call) -> bool:
    mode = node.args[1] if len(node.args) > 1 else next((k.value for k in node.keywords if k.arg == "mode"), None)
    return isinstance(mode, ast.Constant) and isinstance(mode.value, str) and any(c in mode.value for c in "wax+")


def binary_mode(node: ast.Call) -> bool:
    mode = node.args[1] if len(node.args) > 1 else next((k.value for k in node.keywords if k.arg == "mode"), None)
    return isinstance(mode, ast.Constant) and isinstance(mode.value, str) and "b" in mode.value


def falsy(node: ast.expr) -> bool:
    return isinstance(node, ast.Constant) and not node.value


def mentions_parameters(node: ast.expr) -> bool:
    return any(isinstance(n, ast.Attribute) and n.attr in ("parameters", "named_parameters", "weight", "bias")
               for n in ast.walk(node))
