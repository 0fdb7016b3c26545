"""Light data flow over a submission's functions: which values hold validation tokens, training tokens
or the token being scored, and where updates, scores, file reads and cache accesses happen.

Per function, one walk in statement order labels every local name with what its value may depend on
(VAL, TRAIN, TGT, p:<param>, iter:<loop>): an assignment replaces a name's labels, an if joins its
branches, a loop body is walked until the labels at its head are stable. The walk records events with
their positions. Each function gets a summary (labels of its return value, of what it writes into its
parameters and into attributes, its events); a call to a known function applies the callee's summary
with p:<param> replaced by the labels of the caller's arguments, and places the callee's events at the
call site. Functions are analysed callees-first, cycles to a fixed point.

Where labels come from is in labels.py; object identities (what is trained, which model scores) in
identities.py; cache keys and the scored token in keys.py.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field, replace

from harness.compliance import events as ev
from harness.compliance.events import CONTENT, TGT, TRAIN, VAL, Event, is_iter, is_param, iter_label
from harness.compliance.identities import Identities
from harness.compliance.keys import CacheKeys
from harness.compliance.labels import (ACCUMULATE_METHODS, CACHE_READ_METHODS, CACHE_WRITE_METHODS, CALIB_NAME,
                                       FACTORY_FUNCS, HOOK_METHODS, LOG_FUNCS, LOSS_FUNCS, METADATA_ATTRS,
                                       MUTATE_METHODS, NATIVE_LOADERS, RANDOM_FUNCS, READ_FUNCS, READ_METHODS,
                                       REPORT_CALL, SANITIZER_FUNCS, SANITIZER_METHODS, SCORE_SINK, TARGET_NAME,
                                       WRITE_FUNCS, name_labels, only_iter, static_labels, string_labels)
from harness.compliance.names import canonical, dotted_parts, last_name
from harness.compliance.program import MODULE_CODE, ClassInfo, FunctionInfo, Program
from harness.compliance.syntax import (assigned_names, binary_mode, drops_last, falsy, is_self, is_shift, is_static,
                                       last_index, linear, mentions_parameters, returned_objects, walk_local,
                                       write_mode)

MAX_CHAIN = 8  # deepest call chain placed into a caller
MAX_LOOP_PASSES = 4  # walks of a loop body before its labels are taken as stable


@dataclass
class Summary:
    returns: frozenset = frozenset()
    return_kinds: frozenset = frozenset()
    param_writes: dict = field(default_factory=dict)  # param -> labels written into it
    attr_writes: dict = field(default_factory=dict)  # attribute -> labels (may hold p:)
    events: tuple = ()
    pick_params: frozenset = frozenset()  # params used as the target of a loss
    consumes: frozenset = frozenset()  # content and p: labels of every value passed to a call
    hooks: bool = False  # registers forward hooks (a calibration pass)
    combines: tuple = ()  # params its return value combines into one key, e.g. ("context", "token")

    def signature(self):
        return (self.returns, self.return_kinds, tuple(sorted(self.param_writes.items())),
                tuple(sorted(self.attr_writes.items())), len(self.events), hash(self.events), self.pick_params,
                self.consumes, self.hooks, self.combines)


class Analysis:
    """All functions of a program, analysed; `results[key]` holds each function's summary and events."""

    def __init__(self, program: Program) -> None:
        self.program = program
        self.attr_labels: dict[str, frozenset] = {}  # field-based: attribute name -> labels (no p:)
        self.summaries: dict[str, Summary] = {}
        self.analyzers: dict[str, FunctionAnalyzer] = {}
        self.callers: dict[str, set[str]] = {}
        self._dumps: dict[int, str] = {}
        self.module_env: dict[str, dict[str, frozenset]] = {}  # unit label -> module-level name -> labels
        self._local_nodes: dict[str, list[ast.AST]] = {}
        self._class_attrs()
        order = program.analysis_order()
        stale: set[str] | None = None  # None: analyse everything (the first round)
        for _ in range(3):  # labels found late (an __init__ or module code analysed after its users) need a new round
            before_attrs = dict(self.attr_labels)
            before_modules = {k: dict(v) for k, v in self.module_env.items()}
            self._updated: set[str] = set()
            for component in order:
                self._component(component, stale)
            changed = {a for a in set(before_attrs) | set(self.attr_labels) if before_attrs.get(a) != self.attr_labels.get(a)}
            changed |= {f"{unit}:{name}" for unit in set(before_modules) | set(self.module_env)
                        for name in set(before_modules.get(unit, {})) | set(self.module_env.get(unit, {}))
                        if before_modules.get(unit, {}).get(name) != self.module_env.get(unit, {}).get(name)}
            if not changed:
                break
            stale = changed

    def _class_attrs(self) -> None:
        for cls in self.program.classes.values():
            for stmt in cls.node.body:
                if isinstance(stmt, (ast.Assign, ast.AnnAssign)) and stmt.value is not None:
                    targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
                    labels = static_labels(stmt.value)
                    for target in targets:
                        if isinstance(target, ast.Name) and labels:
                            self.add_attr(target.id, labels)

    def dump(self, node: ast.AST) -> str:
        """ast.dump, once per node (nodes live as long as the scan)."""
        found = self._dumps.get(id(node))
        if found is None:
            found = self._dumps[id(node)] = ast.dump(node)
        return found

    def add_attr(self, attr: str, labels) -> None:
        labels = frozenset(label for label in labels if label in (VAL, TRAIN))  # the scored token does not live in fields
        if labels and not labels <= self.attr_labels.get(attr, frozenset()):
            self.attr_labels[attr] = self.attr_labels.get(attr, frozenset()) | labels

    def local_nodes(self, fn: FunctionInfo) -> list[ast.AST]:
        """The nodes of fn's body, not entering nested defs; computed once."""
        found = self._local_nodes.get(fn.key)
        if found is None:
            found = self._local_nodes[fn.key] = [n for stmt in fn.body for n in walk_local(stmt)]
        return found

    def _needs_analysis(self, fn: FunctionInfo, stale: set[str] | None) -> bool:
        """In later rounds, only functions that read a label that changed, or call one whose summary did."""
        analyzer = self.analyzers.get(fn.key)
        if stale is None or analyzer is None:
            return True
        return bool(analyzer.read_names & stale or analyzer.callees & self._updated)

    def _component(self, component: list[FunctionInfo], stale: set[str] | None) -> None:
        for _ in range(4 if len(component) > 1 else 1):
            changed = False
            for fn in component:
                if not self._needs_analysis(fn, stale):
                    continue
                analyzer = FunctionAnalyzer(self, fn)
                analyzer.run()
                old = self.summaries.get(fn.key)
                self.summaries[fn.key] = analyzer.summary
                self.analyzers[fn.key] = analyzer
                if fn.qualname == MODULE_CODE:
                    self.module_env[fn.unit.label] = {name: frozenset(l for l in labels if l in (VAL, TRAIN))
                                                      for name, labels in analyzer.env.items() if labels & {VAL, TRAIN}}
                if old is None or old.signature() != analyzer.summary.signature():
                    changed = True
                    self._updated.add(fn.key)
            if not changed:
                break

    def summary(self, fn: FunctionInfo) -> Summary:
        return self.summaries.get(fn.key, Summary())

    def events(self, fn: FunctionInfo) -> list[Event]:
        analyzer = self.analyzers.get(fn.key)
        return analyzer.events if analyzer else []


class FunctionAnalyzer(Identities, CacheKeys):
    def __init__(self, analysis: Analysis, fn: FunctionInfo) -> None:
        self.analysis = analysis
        self.program = analysis.program
        self.fn = fn
        self.aliases = self.program.aliases[fn.unit.label]
        self.env: dict[str, frozenset] = {}
        self.kinds: dict[str, frozenset] = {}
        self.defs: dict[str, list[ast.expr]] = {}
        self.callable_alias: dict[str, ast.expr] = {}
        self.summary = Summary()
        self.events: list[Event] = []
        self.path: list[tuple] = []
        self.loops: list[int] = []
        self.no_grad = 0
        self.returns: frozenset = frozenset()
        self.return_kinds: frozenset = frozenset()
        self.param_writes: dict[str, frozenset] = {}
        self.attr_writes: dict[str, frozenset] = {}
        self.consumes: set[str] = set()
        self.hooks = False
        self.steps: set[str] = set()  # kinds of optimizers stepped here ("opt:model", "opt:fresh")
        self.grad_inputs_fresh: bool | None = None
        self.params = set(fn.params)
        self.globals: set[str] = set()
        self.sinks: set[str] = set()
        self.returned: set[str] = set()
        self.backwarded: set[str] = set()
        self.combines: tuple = ()  # names whose value a backward() runs through: training losses
        self.target_dumps: set[str] = set()
        self.target_positions: list[tuple[str, str, int]] = []  # (base dump, index var dump, offset) of picked elements
        self.pick_params: set[str] = set()
        self.loop_assigned: dict[int, set[str]] = {}
        self.loop_nodes: dict[int, ast.AST] = {}
        self.while_labels: list[str] = []
        self.def_sites: dict[str, list[tuple]] = {}  # name -> positions of its assignments, in walk order
        self.guards: list[tuple[str, bool]] = []  # (flag, polarity) of the ifs around the current statement
        self.read_names: set[str] = set()  # attributes and "unit:name" module names whose labels this walk used
        self.callees: set[str] = set()  # keys of the functions whose summaries this walk applied

    # -- driver ---------------------------------------------------------------------------------
    def run(self) -> None:
        for param in self.fn.params:
            self.env[param] = frozenset({f"{ev.PARAM}{param}"}) | name_labels(param)
            if TARGET_NAME.match(param):
                self.env[param] |= {TGT}
        self.prepass()
        self.walk_body()
        self.finish()

    def walk_body(self) -> None:
        self.events = []
        self._subject = ...  # update_subject() is computed once per walk
        self.path, self.loops, self.no_grad = [], [], 0
        self.block(self.fn.body, id(self.fn.node), "body")

    def finish(self) -> None:
        target = "fresh" if self.steps == {"opt:fresh"} or (not self.steps and self.grad_inputs_fresh) else (
            "model" if self.steps else "unknown")
        self.events = [e if e.kind != ev.UPDATE or not e.own else _with_detail(e, update_target=target) for e in self.events]
        unique: dict[tuple, Event] = {}
        for event in (self._export(e) for e in self.events):
            # A caller places all of a callee's events at its call site, so positions inside the callee
            # do not matter there: one event per code location and meaning is enough.
            if event is not None:
                unique.setdefault((event.kind, event.unit, event.line, event.col, event.taint, event.subject, event.detail), event)
        exported = tuple(unique.values())
        self.summary = Summary(
            returns=self.returns, return_kinds=self.return_kinds,
            param_writes={k: v for k, v in self.param_writes.items() if v},
            attr_writes={k: v for k, v in self.attr_writes.items() if v},
            events=exported, pick_params=frozenset(self.pick_params), consumes=frozenset(self.consumes), hooks=self.hooks,
            combines=self.combines,
        )

    def _export(self, event: Event) -> Event | None:
        """The event as callers see it: updates of a tensor or adapter created here stay here, unless
        the function returns it (a fitted delta handed back to the caller)."""
        if event.kind == ev.UPDATE and event.own and event.subject is not None and event.subject.startswith("l:"):
            if event.subject.rsplit(":", 1)[-1] not in self.returned:
                return None
            return replace(event, subject=None)
        if event.kind in (ev.CACHE_READ, ev.CACHE_WRITE) and not (event.get("container") or "").startswith((ev.PARAM, "a:")):
            return None  # a local container is read and written in this function only
        if len(event.chain) >= MAX_CHAIN:
            return None
        return event

    # -- pre-pass: definitions, sinks, scoring targets --------------------------------------------
    def prepass(self) -> None:
        return_names: set[str] = set()
        reported: set[str] = set()  # names printed or logged: a driver reports its score that way
        calls: list[ast.Call] = []
        handed_back: set[str] = set()  # names whose object itself is returned (return delta.detach())
        reduced: set[str] = set()
        for node in self.analysis.local_nodes(self.fn):
            if isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)) and node.value is not None:
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for target in targets:
                    self._record_defs(target, node.value)
            elif isinstance(node, (ast.For, ast.AsyncFor)):
                self._record_defs(node.target, node.iter)
            elif isinstance(node, ast.withitem) and node.optional_vars is not None:
                self._record_defs(node.optional_vars, node.context_expr)
            elif isinstance(node, ast.NamedExpr):
                self._record_defs(node.target, node.value)
            elif isinstance(node, ast.Return) and node.value is not None:
                return_names |= {n.id for n in ast.walk(node.value) if isinstance(n, ast.Name)}
                handed_back |= returned_objects(node.value)
                if isinstance(node.value, (ast.BinOp, ast.Tuple)):
                    used = [n.id for n in ast.walk(node.value) if isinstance(n, ast.Name) and n.id in self.params and n.id != "self"]
                    if len(set(used)) > 1:
                        self.combines = tuple(dict.fromkeys(used))
            elif isinstance(node, (ast.Global, ast.Nonlocal)):
                self.globals |= set(node.names)
            elif isinstance(node, ast.While):
                self.loop_assigned[id(node)] = assigned_names(node.body)
            elif isinstance(node, ast.Call):
                calls.append(node)
                if REPORT_CALL.match(last_name(self.canon(node.func)) or ""):
                    reported |= {n.id for a in node.args for n in ast.walk(a) if isinstance(n, ast.Name)}
        for node in calls:  # after every definition is known: picks follow names to their values
            self._prepass_call(node, reduced)
        self.returned = handed_back
        self.sinks = self._closure(return_names | reported) | self.params | self.globals | reduced

    def _record_defs(self, target: ast.expr, value: ast.expr) -> None:
        if isinstance(target, ast.Name):
            self.defs.setdefault(target.id, []).append(value)
        elif isinstance(target, (ast.Tuple, ast.List)):
            values = value.elts if isinstance(value, (ast.Tuple, ast.List)) and len(value.elts) == len(target.elts) else None
            for i, element in enumerate(target.elts):
                self._record_defs(element, values[i] if values else value)
        elif isinstance(target, ast.Starred):
            self._record_defs(target.value, value)

    def _prepass_call(self, node: ast.Call, reduced: set[str]) -> None:
        func = node.func
        name = self.canon(func)
        short = last_name(name) if name else (func.attr if isinstance(func, ast.Attribute) else "")
        if short in ("all_reduce", "reduce", "all_gather", "all_gather_into_tensor", "reduce_scatter"):
            reduced |= {a.id for a in node.args if isinstance(a, ast.Name)}
        if isinstance(func, ast.Attribute) and func.attr in ACCUMULATE_METHODS and isinstance(func.value, ast.Name):
            self.defs.setdefault(func.value.id, []).extend(node.args)
        if isinstance(func, ast.Attribute) and func.attr == "backward":
            self.backwarded |= {n.id for n in ast.walk(func.value) if isinstance(n, ast.Name)}
        elif short in ("grad", "backward") and node.args:
            self.backwarded |= {n.id for n in ast.walk(node.args[0]) if isinstance(n, ast.Name)}
        if short in LOSS_FUNCS:
            target = node.args[1] if len(node.args) > 1 else next((k.value for k in node.keywords if k.arg == "target"), None)
            if target is not None:
                self._add_target(target)
        elif short in LOG_FUNCS and (node.args or isinstance(func, ast.Attribute)):
            for picked in self._picked(node.args[0] if node.args else func.value):
                self._add_target(picked)
        callee = self.resolve(node)
        if callee is not None:
            summary = self.analysis.summaries.get(callee[0].key)
            if summary is not None and summary.pick_params:
                for param, arg in self.bind(callee, node).items():
                    if param in summary.pick_params:
                        self._add_target(arg)

    def _picked(self, node: ast.expr, depth: int = 0) -> list[ast.expr]:
        """What a log() picks: log(p[..., tokens[t]]), log(mixed[y].item()), log(p) with p = a * q[y] + ...:
        the last index of a subscript when that index is a token (a subscript itself, or a target name)."""
        found = []
        for sub in ast.walk(node):
            if isinstance(sub, ast.Subscript):
                index = last_index(sub)
                if isinstance(index, ast.Subscript) or isinstance(index, ast.Name) and TARGET_NAME.match(index.id):
                    found.append(index)
            elif isinstance(sub, ast.Name) and depth < 2 and sub.id not in self.params:
                for value in self.defs.get(sub.id, [])[:2]:
                    found += self._picked(value, depth + 1)
        return found

    def _add_target(self, expr: ast.expr) -> None:
        self.target_dumps.add(self.analysis.dump(expr))
        if isinstance(expr, ast.Name):
            if expr.id in self.params:
                self.pick_params.add(expr.id)
            for value in self.defs.get(expr.id, [])[:4]:
                self.target_dumps.add(self.analysis.dump(value))
        if isinstance(expr, ast.Subscript) and not isinstance(expr.slice, (ast.Slice, ast.Tuple)):
            var, offset = linear(expr.slice)
            self.target_positions.append((ast.dump(expr.value), var, offset))

    def _closure(self, names: set[str]) -> set[str]:
        seen, todo = set(), list(names)
        while todo:
            name = todo.pop()
            if name in seen:
                continue
            seen.add(name)
            for value in self.defs.get(name, []):
                for sub in ast.walk(value):
                    if isinstance(sub, ast.Name) and sub.id not in seen:
                        todo.append(sub.id)
        return seen

    # -- statements -------------------------------------------------------------------------------
    def block(self, stmts: list[ast.stmt], parent: int, field_name: str) -> None:
        for index, stmt in enumerate(stmts):
            self.path.append((parent, field_name, index))
            self.stmt(stmt)
            self.path.pop()

    def stmt(self, node: ast.stmt) -> None:
        """Labels flow in statement order: an assignment replaces a name's labels, an if joins its
        branches, a loop body is walked until the labels at its head stop growing."""
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            return  # analysed on their own
        if isinstance(node, ast.Assign):
            labels = self.expr(node.value)
            for target in node.targets:
                self.assign(target, labels, node.value)
            self.assigned_score(node, labels)
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            self.assign(node.target, self.expr(node.value), node.value)
        elif isinstance(node, ast.AugAssign):
            labels = self.expr(node.value)
            self.accumulate(node.target, labels, node)
            self.assign(node.target, labels | self.expr(node.target), None, augmented=True)
        elif isinstance(node, ast.Expr):
            self.expr(node.value)
        elif isinstance(node, ast.Return):
            if node.value is not None:
                self.returns = self.returns | self.expr(node.value)
                self.return_kinds = self.return_kinds | self.kinds_of(node.value)
        elif isinstance(node, (ast.For, ast.AsyncFor)):
            labels = self.expr(node.iter) | {iter_label(node)}
            self.loop(node, lambda: (self.assign(node.target, labels, node.iter), self.block(node.body, id(node), "body")))
            self.block(node.orelse, id(node), "orelse")
        elif isinstance(node, ast.While):
            label = iter_label(node)
            assigned = self.loop_assigned.get(id(node), ())

            def body():
                for name in assigned:
                    self.env[name] = self.env.get(name, frozenset()) | {label}
                self.expr(node.test)
                self.block(node.body, id(node), "body")

            self.while_labels.append(label)
            self.loop(node, body)
            self.while_labels.pop()
            self.block(node.orelse, id(node), "orelse")
        elif isinstance(node, ast.If):
            self.expr(node.test)
            flag = self.flag_of(node.test)
            before = dict(self.env)
            self.guarded(flag, True, lambda: self.block(node.body, id(node), "then"))
            after_then, self.env = self.env, before
            self.guarded(flag, False, lambda: self.block(node.orelse, id(node), "else"))
            self.env = _join(after_then, self.env)
        elif isinstance(node, (ast.With, ast.AsyncWith)):
            guards = 0
            for item in node.items:
                labels = self.expr(item.context_expr)
                name = self.canon(item.context_expr.func) if isinstance(item.context_expr, ast.Call) else self.canon(item.context_expr)
                if name and last_name(name) in ("no_grad", "inference_mode"):
                    guards += 1
                if item.optional_vars is not None:
                    self.assign(item.optional_vars, labels, item.context_expr)
            self.no_grad += guards
            self.block(node.body, id(node), "body")
            self.no_grad -= guards
        elif isinstance(node, ast.Try) or type(node).__name__ == "TryStar":
            before = dict(self.env)
            self.block(node.body, id(node), "body")
            joined = _join(before, self.env)
            ends = [self.env]
            for index, handler in enumerate(node.handlers):
                self.env = dict(joined)
                self.path.append((id(node), "handlers", index))
                self.block(handler.body, id(handler), "body")
                self.path.pop()
                ends.append(self.env)
            self.env = ends[0]
            self.block(node.orelse, id(node), "orelse")
            for end in ends[1:]:
                self.env = _join(self.env, end)
            self.block(node.finalbody, id(node), "finalbody")
        elif isinstance(node, ast.Match):
            self.expr(node.subject)
            before, ends = dict(self.env), []
            for index, case in enumerate(node.cases):
                self.env = dict(before)
                self.block(case.body, id(node), f"case{index}")
                ends.append(self.env)
            for end in ends:
                before = _join(before, end)
            self.env = before
        elif isinstance(node, (ast.Raise, ast.Assert, ast.Delete)):
            for child in ast.iter_child_nodes(node):
                if isinstance(child, ast.expr):
                    self.expr(child)

    def guarded(self, flag: tuple[str, bool] | None, polarity: bool, body) -> None:
        if flag is None:
            body()
            return
        self.guards.append((flag[0], flag[1] == polarity))
        body()
        self.guards.pop()

    def flag_of(self, test: ast.expr) -> tuple[str, bool] | None:
        """`if args.x:` / `if not use_x:` -> ("x", True/False): the setting an if depends on, when it
        is one name or attribute (a local bound to getattr(args, "x") or args.x counts as x)."""
        positive = True
        while isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
            test, positive = test.operand, not positive
        if isinstance(test, ast.Attribute):
            return test.attr, positive
        if isinstance(test, ast.Name):
            values = self.defs.get(test.id, [])
            if len(values) == 1:
                value = values[0]
                if isinstance(value, ast.Attribute):
                    return value.attr, positive
                if (isinstance(value, ast.Call) and isinstance(value.func, ast.Name) and value.func.id == "getattr"
                        and len(value.args) >= 2 and isinstance(value.args[1], ast.Constant)):
                    return str(value.args[1].value), positive
            return test.id, positive
        return None

    def loop(self, node: ast.AST, body) -> None:
        """Walk a loop body until the labels at its head are stable; keep the last walk's events."""
        self.loops.append(id(node))
        self.loop_nodes[id(node)] = node
        entry, mark = dict(self.env), len(self.events)
        previous = None
        for _ in range(MAX_LOOP_PASSES):
            del self.events[mark:]
            body()
            head = _join(entry, self.env)
            if head == previous:
                break
            previous, self.env = head, dict(head)
        self.env = _join(entry, self.env)  # the body may run zero times
        self.loops.pop()

    def assign(self, target: ast.expr, labels: frozenset, value: ast.expr | None, augmented: bool = False) -> None:
        if isinstance(target, ast.Name):
            labels = labels | frozenset(self.while_labels)  # a while loop has no loop variable: what it assigns varies per turn
            if augmented:
                self.env[target.id] = self.env.get(target.id, frozenset()) | labels
            else:
                self.env[target.id] = labels  # rebinding: the old value's labels are gone
            self.def_sites.setdefault(target.id, []).append(tuple(self.path))
            if value is not None:
                kinds = self.kinds_of(value)
                if kinds:
                    self.kinds[target.id] = self.kinds.get(target.id, frozenset()) | kinds
                if isinstance(value, (ast.Attribute, ast.Name)) and not augmented and target.id not in self.params:
                    self.callable_alias[target.id] = value
        elif isinstance(target, (ast.Tuple, ast.List)):
            values = value.elts if isinstance(value, (ast.Tuple, ast.List)) and len(value.elts) == len(target.elts) else None
            for i, element in enumerate(target.elts):
                element_labels = self.expr(values[i]) if values else labels
                self.assign(element, element_labels, values[i] if values else None, augmented)
        elif isinstance(target, ast.Starred):
            self.assign(target.value, labels, None, augmented)
        elif isinstance(target, ast.Attribute):
            # Field-based: obj.attr's labels live in the program-wide attribute map, not on obj.
            self.attr_writes[target.attr] = self.attr_writes.get(target.attr, frozenset()) | labels
            self.analysis.add_attr(target.attr, labels)
        elif isinstance(target, ast.Subscript):
            key = self.expr(target.slice)
            self.cache_access(ev.CACHE_WRITE, target.value, target.slice, target, labels)
            self.mutate(target.value, labels | only_iter(key))

    def mutate(self, obj: ast.expr, labels: frozenset) -> None:
        """An in-place change of obj (x[i] = v, x.append(v), x.add_(v)): obj now also holds labels."""
        base = obj
        while isinstance(base, (ast.Subscript, ast.Attribute)) and not (isinstance(base, ast.Attribute) and is_self(base.value)):
            base = base.value
        if isinstance(base, ast.Name):
            self.env[base.id] = self.env.get(base.id, frozenset()) | labels
            if base.id in self.params:
                self.param_writes[base.id] = self.param_writes.get(base.id, frozenset()) | labels
        elif isinstance(base, ast.Attribute):
            self.attr_writes[base.attr] = self.attr_writes.get(base.attr, frozenset()) | labels
            self.analysis.add_attr(base.attr, labels)

    def assigned_score(self, node: ast.Assign, labels: frozenset) -> None:
        """val_loss = F.cross_entropy(...) reported by the function is a score (a loss that is
        backpropagated is a training loss instead)."""
        target = node.targets[0]
        if not (len(node.targets) == 1 and isinstance(target, ast.Name) and target.id in self.sinks
                and SCORE_SINK.search(target.id) and target.id not in self.backwarded):
            return
        if not (VAL in labels or TGT in labels or any(is_param(l) for l in labels)):
            return
        if any(isinstance(n, ast.Call) and last_name(self.canon(n.func)) in LOSS_FUNCS | {"log_softmax"} for n in ast.walk(node.value)):
            self.add_event(ev.SCORE, labels, node, subject=self.model_of(node))

    def accumulate(self, target: ast.expr, labels: frozenset, node: ast.AST) -> None:
        """x += loss into a reported total is a score."""
        base = target
        while isinstance(base, ast.Subscript):
            base = base.value
        name = base.id if isinstance(base, ast.Name) else base.attr if isinstance(base, ast.Attribute) else ""
        is_sink = (isinstance(base, ast.Name) and base.id in self.sinks) or (isinstance(base, ast.Attribute) and is_self(base.value))
        if is_sink and SCORE_SINK.search(name) and (VAL in labels or TGT in labels or any(is_param(l) for l in labels)):
            self.add_event(ev.SCORE, labels, node, subject=self.model_of(node))

    # -- expressions -------------------------------------------------------------------------------
    def expr(self, node: ast.expr | None) -> frozenset:
        if node is None:
            return frozenset()
        labels = self._expr(node)
        if self.target_dumps and isinstance(node, (ast.Name, ast.Subscript, ast.Attribute)):
            if self.analysis.dump(node) in self.target_dumps or self._covers_target(node):
                labels = labels | {TGT}
        return labels

    def _expr(self, node: ast.expr) -> frozenset:
        if isinstance(node, ast.Name):
            found = self.env.get(node.id)
            if found is None:  # a module-level name
                self.read_names.add(f"{self.fn.unit.label}:{node.id}")
                found = self.analysis.module_env.get(self.fn.unit.label, {}).get(node.id, frozenset())
            return found | name_labels(node.id)
        if isinstance(node, ast.Constant):
            return string_labels(node.value) if isinstance(node.value, str) else frozenset()
        if isinstance(node, ast.Attribute):
            base = self.expr(node.value)
            if node.attr in METADATA_ATTRS:
                return only_iter(base)
            self.read_names.add(node.attr)
            return base | self.analysis.attr_labels.get(node.attr, frozenset()) | name_labels(node.attr)
        if isinstance(node, ast.Subscript):
            base = self.expr(node.value)
            key = self.expr(node.slice)
            if isinstance(node.ctx, ast.Load):
                self.cache_access(ev.CACHE_READ, node.value, node.slice, node, base)
            labels = base | key
            if VAL in base and is_shift(node.slice):
                labels = labels | {TGT}
            if TGT in labels and drops_last(node.slice) and self._is_target_window(node.value):
                labels = labels - {TGT}  # key[:-1] of an n-gram that ends at the target: its context
            return labels
        if isinstance(node, ast.Call):
            return self.call(node)
        if isinstance(node, ast.Compare):
            parts = [self.expr(node.left)] + [self.expr(c) for c in node.comparators]
            if any(isinstance(op, (ast.Eq, ast.NotEq)) for op in node.ops):
                self.target_compare(node, parts)
            if any(isinstance(op, (ast.In, ast.NotIn)) for op in node.ops):
                for comparator in node.comparators:
                    self.cache_access(ev.CACHE_READ, comparator, node.left, node, frozenset())
            return frozenset().union(*parts)
        if isinstance(node, ast.NamedExpr):
            labels = self.expr(node.value)
            self.assign(node.target, labels, node.value)
            return labels
        if isinstance(node, ast.Lambda):
            return frozenset()
        if isinstance(node, (ast.ListComp, ast.SetComp, ast.GeneratorExp, ast.DictComp)):
            labels = frozenset()
            for generator in node.generators:
                iter_labels = self.expr(generator.iter)
                self.assign(generator.target, iter_labels, generator.iter)
                labels |= iter_labels
                for condition in generator.ifs:
                    self.expr(condition)
            if isinstance(node, ast.DictComp):
                return labels | self.expr(node.key) | self.expr(node.value)
            return labels | self.expr(node.elt)
        labels = frozenset()
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.expr):
                labels |= self.expr(child)
            elif isinstance(child, ast.keyword):
                labels |= self.expr(child.value)
            elif isinstance(child, ast.comprehension):
                labels |= self.expr(child.iter)
        return labels

    def canon(self, node: ast.expr) -> str | None:
        if isinstance(node, ast.Name) and node.id in self.callable_alias and node.id not in self.aliases:
            target = self.callable_alias[node.id]
            if not (isinstance(target, ast.Name) and target.id == node.id):
                return canonical(target, self.aliases)
        return canonical(node, self.aliases)

    def call(self, node: ast.Call) -> frozenset:
        func = node.func
        if isinstance(func, ast.Name) and func.id in self.callable_alias and self.program.lookup_name(self.fn, func.id) is None:
            alias = self.callable_alias[func.id]
            if isinstance(alias, ast.Attribute):  # bw = loss.backward; bw()
                func = alias
        name = self.canon(func)
        short = last_name(name) if name else (func.attr if isinstance(func, ast.Attribute) else "")
        receiver = self.expr(func.value) if isinstance(func, ast.Attribute) else frozenset()
        args = [self.expr(a) for a in node.args]
        keywords = {k.arg: self.expr(k.value) for k in node.keywords}
        everything = receiver.union(*args, *keywords.values())
        self.consumes |= {l for l in everything if l in CONTENT or is_param(l)}

        if isinstance(func, ast.Attribute) and short == "backward" or name in ("torch.autograd.backward",):
            loss = receiver if isinstance(func, ast.Attribute) and short == "backward" else (args[0] if args else frozenset())
            self.add_event(ev.UPDATE, loss, node, subject=self.update_subject(), detail={"how": "backward()"})
            return frozenset()
        if name in ("torch.autograd.grad",):
            self.grad_inputs_fresh = bool(len(node.args) > 1 and "fresh" in self.kinds_of(node.args[1]))
            self.add_event(ev.UPDATE, args[0] if args else frozenset(), node, subject=self.update_subject(),
                           detail={"how": "torch.autograd.grad()"})
            return only_iter(everything)
        if isinstance(func, ast.Attribute) and short == "step" and not node.args:
            kinds = self.kinds_of(func.value)
            self.steps |= {k for k in kinds if k.startswith("opt:")}
        if isinstance(func, ast.Attribute) and short in SANITIZER_METHODS or name in SANITIZER_FUNCS:
            return only_iter(everything)
        if short in RANDOM_FUNCS and name and (name.startswith(("torch.", "numpy.", "np.", "random.")) or name.startswith("rng.")):
            return only_iter(everything)
        if short in HOOK_METHODS:
            self.hooks = True
        if name in READ_FUNCS or (isinstance(func, ast.Attribute) and short in READ_METHODS):
            path = receiver if isinstance(func, ast.Attribute) and short in READ_METHODS else (args[0] if args else frozenset())
            if not write_mode(node):
                self.add_event(ev.READ, path, node)
        if name in WRITE_FUNCS or (isinstance(func, ast.Attribute) and short in ("write", "write_bytes") and
                                   ("wfile" in self.kinds_of(func.value) or short == "write_bytes")):
            data = args[0] if short in ("save", "write", "write_bytes") and name not in ("numpy.save", "np.save") else (args[1] if len(args) > 1 else frozenset())
            self.add_event(ev.WRITE, data, node)
        if isinstance(func, ast.Attribute):
            self.method_effects(node, func, short, receiver, args)
        if name == "numpy.add.at" or name == "np.add.at":
            if len(node.args) >= 2:
                self.cache_access(ev.CACHE_WRITE, node.args[0], node.args[1], node, args[2] if len(args) > 2 else frozenset())
        if "native" in self.kinds_of(func.value if isinstance(func, ast.Attribute) else func):
            self.native_call(node, everything)
            return everything

        callee = self.resolve(node)
        if callee is not None:
            result = self.apply(callee, node, receiver)
            if (isinstance(callee[0], FunctionInfo) and (CALIB_NAME.search(callee[0].name) or self.analysis.summary(callee[0]).hooks)):
                summary = self.analysis.summary(callee[0])
                self.add_event(ev.CALIB, everything | self.substitute(summary.consumes, self.bind(callee, node), receiver), node,
                               detail={"callee": callee[0].qualname})
            return result
        for position, arg in enumerate(node.args):  # callbacks: timed_eval("x", eval_fn, model, ...)
            target = self._function_value(arg)
            if target is not None:
                rest = ast.Call(func=arg, args=node.args[position + 1:], keywords=node.keywords)
                ast.copy_location(rest, node)
                self.apply((target, False), rest, frozenset())
        return everything

    def method_effects(self, node: ast.Call, func: ast.Attribute, short: str, receiver: frozenset, args: list) -> None:
        if short in MUTATE_METHODS and args:
            value = frozenset().union(*args)
            if short in CACHE_WRITE_METHODS:
                key_index = CACHE_WRITE_METHODS[short]
                if len(node.args) > key_index:
                    self.cache_access(ev.CACHE_WRITE, func.value, node.args[key_index], node, value)
            if short in ACCUMULATE_METHODS:
                self.accumulate(func.value, value, node)
            self.mutate(func.value, value)
        if short in CACHE_READ_METHODS and len(node.args) > CACHE_READ_METHODS[short]:
            self.cache_access(ev.CACHE_READ, func.value, node.args[CACHE_READ_METHODS[short]], node, receiver)

    def native_call(self, node: ast.Call, labels: frozenset) -> None:
        """A native library may write into every buffer it is given: they all get every input's labels."""
        self.add_event(ev.NATIVE_CALL, labels, node, detail={"function": self.canon(node.func) or "?"})
        for arg in node.args:
            base = arg
            while isinstance(base, (ast.Call, ast.Attribute, ast.Subscript)):
                base = base.func if isinstance(base, ast.Call) else base.value
            if isinstance(base, ast.Name):
                self.env[base.id] = self.env.get(base.id, frozenset()) | labels

    def _function_value(self, node: ast.expr) -> FunctionInfo | None:
        if isinstance(node, ast.Name):
            found = self.program.lookup_name(self.fn, node.id)
            return found if isinstance(found, FunctionInfo) else None
        return None

    def resolve(self, node: ast.Call):
        """(FunctionInfo, bound) for a call to a known function: bound is True when the callee's first
        parameter is the receiver (methods, constructors)."""
        func = node.func
        if isinstance(func, ast.Name):
            if func.id in self.callable_alias and self.program.lookup_name(self.fn, func.id) is None:
                alias = self.callable_alias[func.id]
                if isinstance(alias, ast.Name) and alias.id != func.id:
                    found = self.program.lookup_name(self.fn, alias.id)
                    if found is not None:
                        return self._callable(found)
            found = self.program.lookup_name(self.fn, func.id)
            if found is not None:
                return self._callable(found)
            for kind in self.kinds.get(func.id, ()):  # model(x): the forward of the model's class
                if kind.startswith("instance:"):
                    cls = self.program.classes.get(kind[len("instance:"):])
                    method = cls and (self.program.method(cls, "forward") or self.program.method(cls, "__call__"))
                    if method:
                        return method, True
            return None
        if not isinstance(func, ast.Attribute):
            return None
        if is_self(func.value) and self.fn.cls is not None:
            method = self.program.method(self.fn.cls, func.attr)
            return (method, not is_static(method.node)) if method else None
        parts = dotted_parts(func)
        if parts and parts[0] in self.aliases:
            found = self.program.lookup_dotted(self.fn, parts)
            return self._callable(found) if found else None
        for kind in self.kinds_of(func.value):
            if kind.startswith("instance:"):
                cls = self.program.classes.get(kind[len("instance:"):])
                method = cls and self.program.method(cls, func.attr)
                if method:
                    return method, True
        method = self.program.unique_method(func.attr)
        if method is not None and not func.attr.startswith("__"):
            return method, not is_static(method.node)
        return None

    def _callable(self, found):
        if isinstance(found, ClassInfo):
            init = self.program.method(found, "__init__")
            return (init, True) if init else None
        return found, False

    def bind(self, callee, node: ast.Call) -> dict[str, ast.expr]:
        fn, bound = callee
        params = fn.params[1:] if bound else fn.params
        mapping: dict[str, ast.expr] = {}
        for param, arg in zip(params, [a for a in node.args if not isinstance(a, ast.Starred)]):
            mapping[param] = arg
        for keyword in node.keywords:
            if keyword.arg in fn.params:
                mapping[keyword.arg] = keyword.value
        return mapping

    def substitute(self, labels: frozenset, mapping: dict[str, ast.expr], receiver: frozenset, self_param: str | None = None) -> frozenset:
        out = set()
        for label in labels:
            if is_param(label):
                param = label[len(ev.PARAM):]
                if param == self_param:
                    out |= receiver
                elif param in mapping:
                    out |= self.expr(mapping[param])
            elif not is_iter(label):
                out.add(label)
        return frozenset(out)

    def apply(self, callee, node: ast.Call, receiver: frozenset) -> frozenset:
        fn, bound = callee
        summary = self.analysis.summary(fn)
        self.analysis.callers.setdefault(fn.key, set()).add(self.fn.key)
        self.callees.add(fn.key)
        mapping = self.bind(callee, node)
        self_param = fn.params[0] if bound and fn.params else None
        subst = lambda labels: self.substitute(labels, mapping, receiver, self_param)
        for param, labels in summary.param_writes.items():
            arg = mapping.get(param)
            if arg is not None:
                self.mutate(arg, subst(labels))
            elif param == self_param and isinstance(node.func, ast.Attribute):
                self.mutate(node.func.value, subst(labels))
        for attr, labels in summary.attr_writes.items():
            self.analysis.add_attr(attr, subst(labels))
        for event in summary.events:
            self.place(event, fn, mapping, subst, node)
        result = subst(summary.returns)
        if bound and fn.name == "__init__":
            result |= receiver | frozenset().union(*(self.expr(a) for a in node.args))
        return result

    def place(self, event: Event, fn: FunctionInfo, mapping: dict, subst, node: ast.Call) -> None:
        taint = subst(event.taint)
        if not (taint & CONTENT or any(is_param(l) for l in taint)) and event.kind not in (ev.WRITE,):
            return
        subject = self.map_subject(event.subject, mapping)
        detail = {k: self.map_detail(k, v, mapping, subst) for k, v in event.detail}
        if self.guards:
            detail["guards"] = tuple(self.guards) + tuple(detail.get("guards", ()))
        if event.kind == ev.SCORE:  # what the call was given: an adapter trained here and passed in is in use
            detail["call_roots"] = tuple(sorted({r for r in (self.object_root(a) for a in mapping.values()) if r}))
        self.events.append(event.placed(tuple(self.path), tuple(self.loops), fn.qualname, taint, subject,
                                        tuple(sorted(detail.items())), (self.fn.unit.label, node.lineno, node.col_offset)))

    def map_subject(self, subject: str | None, mapping: dict) -> str | None:
        if subject is None or not subject.startswith(ev.PARAM):
            return subject
        arg = mapping.get(subject[len(ev.PARAM):])
        return self.object_root(arg) if arg is not None else None

    def map_detail(self, key: str, value, mapping: dict, subst):
        if key == "container" and isinstance(value, str) and value.startswith(ev.PARAM):
            arg = mapping.get(value[len(ev.PARAM):])
            return self.container_id(arg) if arg is not None else None
        if key == "key_dims":
            dims = []
            for dim in value:
                parts: list = []
                for part in dim:
                    params = [l[len(ev.PARAM):] for l in part if is_param(l)]
                    if len(params) == 1 and part == {f"{ev.PARAM}{params[0]}"} and params[0] in mapping:
                        parts.extend(self.key_parts(mapping[params[0]]))  # lookup(cache, key): the caller built the key
                    else:
                        parts.append(subst(part))
                dims.append(tuple(parts))
            return tuple(dims)
        if key == "other":
            return subst(value)
        return value

    # -- kinds of values (optimizers, fresh tensors, instances, files) -------------------------------
    def kinds_of(self, node: ast.expr) -> frozenset:
        if isinstance(node, ast.Name):
            return self.kinds.get(node.id, frozenset())
        if isinstance(node, (ast.List, ast.Tuple)):
            return frozenset().union(*(self.kinds_of(e) for e in node.elts)) if node.elts else frozenset()
        if isinstance(node, ast.Subscript):
            return self.kinds_of(node.value)
        if not isinstance(node, ast.Call):
            return frozenset()
        name = self.canon(node.func) or ""
        short = last_name(name)
        if name.startswith("torch.optim.") and short[:1].isupper() and ".lr_scheduler" not in name:
            return frozenset({"optimizer", self._optimizer_kind(node)})
        if name in NATIVE_LOADERS:
            return frozenset({"native"})
        if isinstance(node.func, ast.Attribute) and node.func.attr == "requires_grad_":
            return frozenset({"fresh"}) if not mentions_parameters(node.func.value) else frozenset()
        if short in FACTORY_FUNCS and any(k.arg == "requires_grad" and not falsy(k.value) for k in node.keywords):
            return frozenset({"fresh"})
        if short == "Parameter" and node.args and self.fn.name != "__init__":
            return frozenset({"fresh"})
        if name in ("open", "io.open", "builtins.open") and write_mode(node) and binary_mode(node):
            return frozenset({"wfile"})
        callee = self.resolve(node)
        if callee is not None:
            fn, bound = callee
            if bound and fn.name == "__init__" and fn.cls is not None:
                if self.program.is_optimizer_class(fn.cls):
                    return frozenset({"optimizer", self._optimizer_kind(node), f"instance:{fn.cls.key}"})
                return frozenset({f"instance:{fn.cls.key}"})
            return self.analysis.summary(fn).return_kinds
        return frozenset()

    def _optimizer_kind(self, node: ast.Call) -> str:
        params = node.args[0] if node.args else next((k.value for k in node.keywords if k.arg == "params"), None)
        if params is None:
            return "opt:model"
        names = [n for n in ast.walk(params) if isinstance(n, ast.Name)]
        fresh = [n for n in names if "fresh" in self.kinds.get(n.id, frozenset())]
        return "opt:fresh" if fresh and len(fresh) == len([n for n in names if n.id in self.kinds or n.id in self.defs]) else "opt:model"

    def add_event(self, kind: str, labels: frozenset, node: ast.AST, subject: str | None = None, detail: dict | None = None) -> None:
        detail = dict(detail or {})
        if kind == ev.SCORE:
            detail["no_grad"] = self.no_grad > 0
        if self.guards:
            detail["guards"] = tuple(self.guards)
        self.events.append(Event(kind=kind, taint=frozenset(labels), unit=self.fn.unit.label, line=getattr(node, "lineno", 0),
                                 col=getattr(node, "col_offset", 0), func=self.fn.qualname, path=tuple(self.path),
                                 loops=tuple(self.loops), subject=subject, detail=tuple(sorted(detail.items())), node=node))


def _join(left: dict, right: dict) -> dict:
    joined = dict(left)
    for name, labels in right.items():
        joined[name] = joined.get(name, frozenset()) | labels
    return joined


def _with_detail(event: Event, **extra) -> Event:
    detail = dict(event.detail)
    detail.update(extra)
    return replace(event, detail=tuple(sorted(detail.items())))


