"""An index of the functions and classes of the units that run together, and how calls resolve.

Resolution is static and conservative: a name resolves to a function of the same unit or to one
imported from a sibling unit; `self.m()` to the method of the enclosing class or its bases; `obj.m()`
to the class of `obj` when known, else to the only method of that name in the program; `Cls(...)` to
`Cls.__init__`. A call that resolves nowhere is an unknown function (its result depends on its inputs).
The call graph orders the analysis callees-first (strongly connected components, Tarjan).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field

from harness.compliance.names import canonical
from harness.compliance.sources import Unit

MODULE_CODE = "<module>"
OPTIMIZER_BASES = ("torch.optim.Optimizer", "torch.optim.optimizer.Optimizer", "Optimizer")


@dataclass(eq=False)
class FunctionInfo:
    key: str  # "<unit label>::<qualname>", unique in the program
    unit: Unit
    qualname: str  # "eval_val", "GPT.forward", "main.<locals>._fwd", "<module>"
    node: ast.AST  # FunctionDef/AsyncFunctionDef, or the Module for module-level code
    body: list[ast.stmt]
    params: list[str]
    cls: "ClassInfo | None" = None
    defaults: dict[str, ast.expr] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.qualname.rsplit(".", 1)[-1]

    @property
    def is_method(self) -> bool:
        return self.cls is not None and bool(self.params) and not _is_static(self.node)


@dataclass(eq=False)
class ClassInfo:
    key: str
    unit: Unit
    name: str
    node: ast.ClassDef
    bases: list[str]  # canonical names of the bases
    methods: dict[str, FunctionInfo] = field(default_factory=dict)


def _is_static(node: ast.AST) -> bool:
    decorators = getattr(node, "decorator_list", [])
    return any(isinstance(d, ast.Name) and d.id == "staticmethod" for d in decorators)


class Program:
    def __init__(self, units: list[Unit]) -> None:
        self.units = [u for u in units if u.tree is not None]
        self.aliases: dict[str, dict[str, str]] = {u.label: u.aliases() for u in self.units}
        self.functions: dict[str, FunctionInfo] = {}
        self.classes: dict[str, ClassInfo] = {}
        self.top: dict[tuple[str, str], FunctionInfo | ClassInfo] = {}  # (unit label, name) -> top-level def
        self.nested: dict[tuple[str, str], FunctionInfo] = {}  # (enclosing key, name) -> nested def
        self.methods_by_name: dict[str, list[FunctionInfo]] = {}
        self.modules: dict[str, Unit] = {}
        for unit in self.units:
            self.modules.setdefault(unit.module, unit)
            self._index(unit)

    # -- indexing -------------------------------------------------------------------------------
    def _index(self, unit: Unit) -> None:
        module = FunctionInfo(key=f"{unit.label}::{MODULE_CODE}", unit=unit, qualname=MODULE_CODE, node=unit.tree,
                              body=[s for s in unit.tree.body if not isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))],
                              params=[])
        self.functions[module.key] = module
        self._index_body(unit, unit.tree.body, prefix="", cls=None, enclosing=None)

    def _index_body(self, unit: Unit, body: list[ast.stmt], prefix: str, cls: ClassInfo | None, enclosing: FunctionInfo | None) -> None:
        for node in _defs_in(body):
            if isinstance(node, ast.ClassDef):
                info = ClassInfo(key=f"{unit.label}::{prefix}{node.name}", unit=unit, name=node.name, node=node,
                                 bases=[canonical(b, self.aliases[unit.label]) or "" for b in node.bases])
                self.classes[info.key] = info
                if enclosing is None and cls is None:
                    self.top[(unit.label, node.name)] = info
                self._index_body(unit, node.body, prefix=f"{prefix}{node.name}.", cls=info, enclosing=None)
                continue
            qualname = f"{prefix}{node.name}"
            args = node.args
            params = [a.arg for a in args.posonlyargs + args.args]
            params += [args.vararg.arg] if args.vararg else []
            params += [a.arg for a in args.kwonlyargs]
            params += [args.kwarg.arg] if args.kwarg else []
            positional = args.posonlyargs + args.args
            defaults = {a.arg: d for a, d in zip(positional[len(positional) - len(args.defaults):], args.defaults)}
            info = FunctionInfo(key=f"{unit.label}::{qualname}", unit=unit, qualname=qualname, node=node,
                                body=node.body, params=params, cls=cls, defaults=defaults)
            self.functions[info.key] = info
            if cls is not None:
                cls.methods.setdefault(node.name, info)
                self.methods_by_name.setdefault(node.name, []).append(info)
            elif enclosing is not None:
                self.nested[(enclosing.key, node.name)] = info
            else:
                self.top[(unit.label, node.name)] = info
            self._index_body(unit, node.body, prefix=f"{qualname}.<locals>.", cls=None, enclosing=info)

    # -- resolution -----------------------------------------------------------------------------
    def lookup_name(self, fn: FunctionInfo, name: str) -> FunctionInfo | ClassInfo | None:
        """A bare name used inside fn: a nested def of fn (or of its enclosers), a top-level def of the
        unit, or a def imported from a sibling unit."""
        scope = fn
        while scope is not None:
            found = self.nested.get((scope.key, name))
            if found:
                return found
            scope = self._encloser(scope)
        found = self.top.get((fn.unit.label, name))
        if found:
            return found
        target = self.aliases[fn.unit.label].get(name)
        if target and "." in target:
            module, _, attr = target.rpartition(".")
            unit = self.modules.get(module.lstrip("."))
            if unit is not None:
                return self.top.get((unit.label, attr))
        return None

    def lookup_dotted(self, fn: FunctionInfo, parts: list[str]) -> FunctionInfo | ClassInfo | None:
        """module.func for a sibling module imported whole (import ngram_tilt; ngram_tilt.f())."""
        if len(parts) != 2:
            return None
        target = self.aliases[fn.unit.label].get(parts[0])
        unit = self.modules.get(target) if target else None
        return self.top.get((unit.label, parts[1])) if unit is not None else None

    def _encloser(self, fn: FunctionInfo) -> FunctionInfo | None:
        if ".<locals>." not in fn.qualname:
            return None
        return self.functions.get(f"{fn.unit.label}::{fn.qualname.rsplit('.<locals>.', 1)[0]}")

    def method(self, cls: ClassInfo, name: str, depth: int = 0) -> FunctionInfo | None:
        if name in cls.methods:
            return cls.methods[name]
        if depth > 8:
            return None
        for base in cls.bases:
            base_cls = self.class_named(cls.unit, base)
            if base_cls is not None and base_cls is not cls:
                found = self.method(base_cls, name, depth + 1)
                if found:
                    return found
        return None

    def class_named(self, unit: Unit, name: str) -> ClassInfo | None:
        found = self.top.get((unit.label, name.rsplit(".", 1)[-1]))
        return found if isinstance(found, ClassInfo) else None

    def unique_method(self, name: str) -> FunctionInfo | None:
        candidates = self.methods_by_name.get(name, [])
        return candidates[0] if len(candidates) == 1 else None

    def is_optimizer_class(self, cls: ClassInfo, depth: int = 0) -> bool:
        for base in cls.bases:
            if base in OPTIMIZER_BASES or base.endswith(".Optimizer"):
                return True
            base_cls = self.class_named(cls.unit, base)
            if base_cls is not None and base_cls is not cls and depth < 8 and self.is_optimizer_class(base_cls, depth + 1):
                return True
        return False

    # -- call graph -----------------------------------------------------------------------------
    def analysis_order(self) -> list[list[FunctionInfo]]:
        """Strongly connected components of the (name-based, over-approximate) call graph, callees first."""
        names: dict[str, list[FunctionInfo]] = {}
        for info in self.functions.values():
            names.setdefault(info.name, []).append(info)
        for cls in self.classes.values():  # Cls(...) runs Cls.__init__; model(x) runs forward
            names.setdefault(cls.name, []).extend(f for f in cls.methods.values() if f.name in ("__init__", "forward", "__call__"))
        edges = {key: sorted({callee.key for n in _called_names(info) for callee in names.get(n, ()) if callee.key != key})
                 for key, info in self.functions.items()}
        return [[self.functions[k] for k in component] for component in _tarjan(edges)]


def _defs_in(body: list[ast.stmt]):
    """Defs of a body, including those under if/try/with at the same level (guarded definitions)."""
    for node in body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            yield node
        elif isinstance(node, (ast.If, ast.Try, ast.With, ast.AsyncWith)):
            for field_name in ("body", "orelse", "finalbody"):
                yield from _defs_in(getattr(node, field_name, []) or [])
            for handler in getattr(node, "handlers", []) or []:
                yield from _defs_in(handler.body)


def _called_names(info: FunctionInfo) -> set[str]:
    """Every simple name that may denote a callee: called names, called attributes, names passed as
    arguments (callbacks), walking nested defs too (a closure's callees run when it is called)."""
    found: set[str] = set()
    for stmt in info.body:
        for node in ast.walk(stmt):
            if isinstance(node, ast.Call):
                func = node.func
                if isinstance(func, ast.Name):
                    found.add(func.id)
                elif isinstance(func, ast.Attribute):
                    found.add(func.attr)
                found.update(a.id for a in node.args if isinstance(a, ast.Name))
                found.update(k.value.id for k in node.keywords if isinstance(k.value, ast.Name))
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
                found.add(node.id)
    return found


def _tarjan(edges: dict[str, list[str]]) -> list[list[str]]:
    """Tarjan's SCC algorithm, iterative; components come out callees-first."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    out: list[list[str]] = []
    counter = 0
    for start in edges:
        if start in index:
            continue
        work = [(start, 0)]
        while work:
            node, child = work.pop()
            if child == 0:
                index[node] = low[node] = counter
                counter += 1
                stack.append(node)
                on_stack.add(node)
            successors = edges.get(node, [])
            if child < len(successors):
                work.append((node, child + 1))
                succ = successors[child]
                if succ not in index:
                    work.append((succ, 0))
                elif succ in on_stack:
                    low[node] = min(low[node], index[succ])
                continue
            if low[node] == index[node]:
                component = []
                while True:
                    item = stack.pop()
                    on_stack.discard(item)
                    component.append(item)
                    if item == node:
                        break
                out.append(component)
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
    return out
