"""Cache keys and the scored token for the data-flow pass: what a key combines, whether an n-gram
window ends at the token being scored, and comparisons with the realised token."""

from __future__ import annotations

import ast

from harness.compliance import events as ev
from harness.compliance.events import CONTENT, TGT, TRAIN, VAL, is_param
from harness.compliance.syntax import linear


class CacheKeys:
    """Mixin of FunctionAnalyzer (uses its expr, defs, params, resolve, bind, analysis, add_event)."""

    def cache_access(self, kind: str, container: ast.expr, key: ast.expr, node: ast.AST, value: frozenset) -> None:
        cid = self.container_id(container)
        if cid is None or self._own_key(container, key):
            return
        dims = tuple(self.key_parts(e) for e in (key.elts if isinstance(key, ast.Tuple) else [key]))
        key_labels = frozenset().union(*(part for dim in dims for part in dim)) if dims else frozenset()
        if not (key_labels & CONTENT or any(is_param(l) for l in key_labels)):
            return
        self.add_event(kind, key_labels | (value if kind == ev.CACHE_WRITE else frozenset()), node,
                       detail={"container": cid, "key_dims": dims})

    def _own_key(self, container: ast.expr, key: ast.expr) -> bool:
        """for name in table: table[name] ... — the key comes from the container itself, not from tokens."""
        if not isinstance(key, ast.Name):
            return False
        values = self.defs.get(key.id, [])
        wanted = self.analysis.dump(container)
        return bool(values) and all(any(self.analysis.dump(n) == wanted for n in ast.walk(v) if isinstance(n, (ast.Name, ast.Attribute)))
                                    for v in values)

    def key_parts(self, node: ast.expr, depth: int = 0) -> tuple:
        """The pieces a key combines: (ctx * P + y) % M -> labels of ctx, P, y, M. A key that is one
        value has one piece."""
        if isinstance(node, ast.Slice):
            return (frozenset().union(self.expr(node.lower), self.expr(node.upper)),)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in (
                "tolist", "tobytes", "numpy", "cpu", "item", "tostring", "long", "int"):
            return self.key_parts(node.func.value, depth + 1)
        if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Slice) and self._covers_target(node):
            labels = self.expr(node)  # an n-gram window that ends at the scored token: context and target together
            return (labels, labels - {TGT})
        if depth < 4:
            if isinstance(node, ast.BinOp):
                return self.key_parts(node.left, depth + 1) + self.key_parts(node.right, depth + 1)
            if isinstance(node, ast.Tuple):
                return tuple(p for e in node.elts for p in self.key_parts(e, depth + 1))
            if isinstance(node, ast.Call) and (self.canon(node.func) or "") in ("hash", "tuple", "str", "bytes", "int", "abs"):
                return tuple(p for a in node.args for p in self.key_parts(a, depth + 1))
            if isinstance(node, ast.Call):
                callee = self.resolve(node)
                combines = self.analysis.summary(callee[0]).combines if callee else ()
                if len(combines) > 1:  # key(ctx, tok) returning (ctx * 31 + tok) % size
                    mapping = self.bind(callee, node)
                    return tuple(self.expr(mapping[p]) for p in combines if p in mapping)
            if isinstance(node, ast.Name) and node.id not in self.params:
                values = self.defs.get(node.id, [])
                if len(values) == 1 and isinstance(values[0], (ast.BinOp, ast.Tuple, ast.Call, ast.Subscript)):
                    parts = self.key_parts(values[0], depth + 1)
                    if len(parts) > 1:
                        return parts
        return (self.expr(node),)

    def target_compare(self, node: ast.Compare, parts: list[frozenset]) -> None:
        if len(parts) != 2:
            return
        left, right = parts
        for one, other, other_node in ((left, right, node.comparators[0]), (right, left, node.left)):
            if TGT in one and TGT not in other and (other & {VAL, TRAIN} or any(is_param(l) for l in other)) and not isinstance(other_node, ast.Constant):
                self.add_event(ev.TARGET_COMPARE, one | other, node, detail={"other": other})
                return

    # -- events ----------------------------------------------------------------------------------------

    def _is_target_window(self, node: ast.expr) -> bool:
        if not isinstance(node, ast.Name):
            return False
        values = self.defs.get(node.id, [])
        return len(values) == 1 and len(self.key_parts(values[0])) > 1

    def _covers_target(self, node: ast.expr) -> bool:
        """tokens[t-k+1:t+1] covers tokens[t] when tokens[t] is what the score picks."""
        if not (self.target_positions and isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Slice)):
            return False
        if node.slice.upper is None:
            return False
        base = ast.dump(node.value)
        var, offset = linear(node.slice.upper)
        return any(base == t_base and var == t_var and offset > t_offset for t_base, t_var, t_offset in self.target_positions)

    # -- calls ---------------------------------------------------------------------------------------
