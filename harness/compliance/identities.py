"""Identities for the data-flow pass: which object an expression denotes, what an optimizer trains,
which model produced a score, which container a cache access touches.

Names are p:<param> (an object the caller passes in), l:<function key>:<local> (an object made in the
function), a:<attribute> (a field, program-wide). A caller maps p: names to its own arguments, so an
update of p:base_model in a TTT function becomes an update of the caller's model.
"""

from __future__ import annotations

import ast

from harness.compliance import events as ev
from harness.compliance.labels import MODEL_METHODS
from harness.compliance.names import last_name
from harness.compliance.syntax import is_self, walk_local


class Identities:
    """Mixin of FunctionAnalyzer (uses its defs, params, kinds, fn, program, canon)."""

    def data_nodes(self, node: ast.AST, limit: int = 200):
        """Every node of `node` and of the definitions of the names it uses, each name followed once."""
        seen: set[str] = set()
        todo: list[ast.AST] = [node]
        steps = 0
        while todo and steps < limit:
            current = todo.pop()
            steps += 1
            for sub in ast.walk(current):
                yield sub
                if isinstance(sub, ast.Name) and sub.id not in seen:
                    seen.add(sub.id)
                    todo.extend(self.defs.get(sub.id, [])[:6])

    def object_root(self, node: ast.expr | None, depth: int = 0) -> str | None:
        """A name for the object an expression denotes: p:<param>, l:<fn>:<local>, a:<attribute>."""
        if node is None or depth > 6:
            return None
        if isinstance(node, ast.Name):
            if node.id in self.params:
                return f"{ev.PARAM}{node.id}"
            values = self.defs.get(node.id, [])
            if len(values) == 1 and isinstance(values[0], (ast.Name, ast.Attribute, ast.Subscript)):
                return self.object_root(values[0], depth + 1)
            calls = [v for v in values if isinstance(v, ast.Call)]
            if calls and all(self._wraps_object(c) is not None for c in calls):
                roots = {self.object_root(self._wraps_object(c), depth + 1) for c in calls}
                if len(roots) == 1 and None not in roots:
                    return roots.pop()
            return f"l:{self.fn.key}:{node.id}" if values else None
        if isinstance(node, ast.Attribute):
            if is_self(node.value) or node.attr not in ("forward", "forward_logits", "forward_ttt", "module", "_orig_mod"):
                return f"a:{node.attr}" if is_self(node.value) else self.object_root(node.value, depth + 1)
            return self.object_root(node.value, depth + 1)
        if isinstance(node, ast.Subscript):
            return self.object_root(node.value, depth + 1)
        if isinstance(node, ast.Call):
            inner = self._wraps_object(node)
            return self.object_root(inner, depth + 1) if inner is not None else None
        return None

    def _wraps_object(self, node: ast.Call) -> ast.expr | None:
        """torch.compile(m), DDP(m), m.to(device), m.parameters(): the object inside."""
        name = self.canon(node.func) or ""
        short = last_name(name)
        if short in ("compile", "DistributedDataParallel", "DDP", "DataParallel", "FSDP", "FullyShardedDataParallel") and node.args:
            return node.args[0]
        if isinstance(node.func, ast.Attribute) and node.func.attr in ("to", "cuda", "float", "bfloat16", "half", "parameters",
                                                                        "named_parameters", "requires_grad_", "train", "eval"):
            return node.func.value
        return None

    def update_subject(self) -> str | None:
        """What the optimizers stepped in this function train (p:/a: when it outlives the function)."""
        if self._subject is ...:
            self._subject = self._update_subject()
        return self._subject

    def _update_subject(self) -> str | None:
        roots = set()
        for stmt in self.fn.body:
            for node in walk_local(stmt):
                if isinstance(node, ast.Call) and self._is_optimizer_ctor(node):
                    params = node.args[0] if node.args else next((k.value for k in node.keywords if k.arg == "params"), None)
                    roots.add(self._param_root(params))
        roots.discard(None)
        if len(roots) == 1:
            return roots.pop()
        return next((r for r in sorted(roots) if not r.startswith("l:")), None) if roots else None

    def _is_optimizer_ctor(self, node: ast.Call) -> bool:
        return "optimizer" in self.kinds_of(node)

    def _param_root(self, node: ast.expr | None, depth: int = 0) -> str | None:
        if node is None or depth > 6:
            return None
        if isinstance(node, ast.Call):
            inner = self._wraps_object(node)
            if inner is not None:
                return self.object_root(inner)
            return None
        if isinstance(node, (ast.List, ast.Tuple)) and node.elts:
            return self._param_root(node.elts[0], depth + 1)
        if isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values):
                if isinstance(key, ast.Constant) and key.value == "params":
                    return self._param_root(value, depth + 1)
            return None
        if isinstance(node, (ast.ListComp, ast.GeneratorExp)):
            return self._param_root(node.generators[0].iter, depth + 1)
        if isinstance(node, ast.Name):
            if "fresh" in self.kinds.get(node.id, frozenset()):
                return f"l:{self.fn.key}:{node.id}"
            if node.id in self.params:
                return f"{ev.PARAM}{node.id}"
            for value in self.defs.get(node.id, []):
                root = self._param_root(value, depth + 1)
                if root is not None:
                    return root
            return f"l:{self.fn.key}:{node.id}" if node.id in self.defs else None
        if isinstance(node, ast.Attribute):
            return self.object_root(node)
        return None

    def constructor_of(self, name: str) -> str | None:
        """The canonical class a local was built from: probe = nn.Linear(...).to(device) -> torch.nn.Linear."""
        for value in self.defs.get(name, []):
            while isinstance(value, ast.Call) and self._wraps_object(value) is not None:
                value = self._wraps_object(value)
            if isinstance(value, ast.Call):
                return self.canon(value.func)
        return None

    def model_of(self, node: ast.AST) -> str | None:
        """The model whose forward produced a score: the first model call in the score's data."""
        for sub in self.data_nodes(node):
            if isinstance(sub, ast.Call):
                root = self._model_call_root(sub)
                if root is not None:
                    return root
        return None

    def _model_call_root(self, node: ast.Call) -> str | None:
        func = node.func
        if isinstance(func, ast.Attribute) and MODEL_METHODS.match(func.attr):
            return self.object_root(func.value)
        if isinstance(func, ast.Name) and self.program.lookup_name(self.fn, func.id) is None and func.id not in self.aliases:
            if func.id in self.params or any(self._wraps_object(v) is not None for v in self.defs.get(func.id, []) if isinstance(v, ast.Call)):
                return self.object_root(func)
        return None

    def container_id(self, node: ast.expr | None) -> str | None:
        if isinstance(node, ast.Name):
            return f"{ev.PARAM}{node.id}" if node.id in self.params else f"l:{self.fn.key}:{node.id}"
        if isinstance(node, ast.Attribute):
            return f"a:{node.attr}"
        return None

    # -- cache accesses, target comparisons ------------------------------------------------------------
