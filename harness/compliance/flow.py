"""Light data flow over a submission's functions: which values hold validation tokens, training tokens
or the token being scored, and where updates, scores, file reads and cache accesses happen.

Per function, a flow-insensitive pass labels every local name with what its value may depend on
(VAL, TRAIN, TGT, p:<param>, iter:<loop>) until the labels stop growing; a final ordered walk records
events with their positions. Each function gets a summary (labels of its return value, of what it
writes into its parameters and into attributes, its events); a call to a known function applies the
callee's summary with p:<param> replaced by the labels of the caller's arguments, and places the
callee's events at the call site. Functions are analysed callees-first, cycles to a fixed point.

Label sources: names (val_tokens, val_files, train_loader, targets, y, ...), path strings
("fineweb_val_*.bin"), the [1:] shift of a validation token stream (targets), loss targets
(F.cross_entropy(logits, y)), and what a log() picks. Metadata (numel, size, shape, len, nonzero)
drops content labels; random generators start clean.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field, replace

from harness.compliance import events as ev
from harness.compliance.events import CONTENT, TGT, TRAIN, VAL, Event, is_iter, is_param, iter_label
from harness.compliance.names import canonical, dotted_parts, last_name
from harness.compliance.program import MODULE_CODE, ClassInfo, FunctionInfo, Program

_DATA_WORDS = r"(?:tokens?|toks|data|files?|ids|set|seqs?|stream|docs?|shards?|loader|batch(?:es)?|pattern|paths?|inputs?|targets?|chunks?|x|y|dataset)"
VAL_NAME = re.compile(rf"^(?:all_)?(?:val|valid|validation)(?:_{_DATA_WORDS})?$|_val_{_DATA_WORDS}$|^val_")
VAL_EXCLUDE = re.compile(r"^val_(?:loss|bpb|acc|every|batch_size|batch_tokens|interval|steps?|freq|frac|ppl|time|ms)\b")
TRAIN_NAME = re.compile(rf"^(?:train|training)_{_DATA_WORDS}$")
TARGET_NAME = re.compile(r"^(?:y|ys|yb|tgt|tgts|target|targets|target_ids|target_tokens|tgt_ids|y_batch|y_flat|labels?|next_tokens?|gold)$")
VAL_STRING = re.compile(r"fineweb_val|(?:^|[/_*])val(?:idation)?[_*][^/]*\.(?:bin|npy|pt)$")
TRAIN_STRING = re.compile(r"fineweb_train|(?:^|[/_*])train[_*][^/]*\.(?:bin|npy|pt)$")

SANITIZER_METHODS = frozenset({"numel", "size", "dim", "nelement", "nonzero", "argwhere", "count_nonzero",
                               "element_size", "stride", "is_contiguous", "data_ptr", "get_device", "__len__"})
SANITIZER_FUNCS = frozenset({"len", "isinstance", "type", "id", "hasattr", "callable", "print"})
METADATA_ATTRS = frozenset({"shape", "dtype", "device", "ndim", "is_cuda", "requires_grad", "grad_fn", "names"})
RANDOM_FUNCS = frozenset({"randint", "randn", "rand", "randperm", "rand_like", "randn_like", "randint_like",
                          "normal", "uniform", "bernoulli", "multinomial", "integers", "random", "choice"})
LOSS_FUNCS = frozenset({"cross_entropy", "nll_loss"})
LOG_FUNCS = frozenset({"log", "log2", "log10"})
FACTORY_FUNCS = frozenset({"zeros", "ones", "empty", "full", "randn", "rand", "zeros_like", "ones_like",
                           "empty_like", "full_like", "tensor", "randn_like"})
READ_FUNCS = frozenset({"open", "io.open", "builtins.open", "numpy.memmap", "numpy.fromfile", "numpy.load",
                        "torch.load", "np.memmap", "np.fromfile", "np.load"})
READ_METHODS = frozenset({"read_bytes", "read_text"})
WRITE_FUNCS = frozenset({"torch.save", "numpy.save", "numpy.savez", "numpy.savez_compressed", "np.save", "np.savez"})
ACCUMULATE_METHODS = frozenset({"add_", "append", "extend", "sub_"})
MUTATE_METHODS = frozenset({"add_", "append", "extend", "insert", "update", "copy_", "fill_", "sub_", "mul_",
                            "index_add_", "scatter_add_", "scatter_", "index_put_", "index_copy_", "put_", "setdefault", "add"})
CACHE_WRITE_METHODS = {"index_add_": 1, "scatter_add_": 1, "scatter_": 1, "index_copy_": 1, "index_put_": 0, "put_": 0,
                       "setdefault": 0, "index_fill_": 1}
CACHE_READ_METHODS = {"get": 0, "index_select": 1}
HOOK_METHODS = frozenset({"register_forward_hook", "register_forward_pre_hook", "register_full_backward_hook"})
CALIB_NAME = re.compile(r"hessian|calib", re.I)
MODEL_METHODS = re.compile(r"^(?:forward\w*|__call__|logits|get_logits|predict|score)$")
NATIVE_LOADERS = frozenset({"ctypes.CDLL", "ctypes.cdll.LoadLibrary", "ctypes.PyDLL", "ctypes.WinDLL",
                            "torch.utils.cpp_extension.load", "torch.utils.cpp_extension.load_inline", "cffi.FFI.dlopen"})
# What a reported total is called: an accumulation into one of these is a score (x += h in a forward is not).
SCORE_SINK = re.compile(r"loss|nll|bpb|(?:^|_)bits|bytes?(?:_|$)|(?:^|_)scores?(?:_|$)|entropy|logp|log_prob|ppl|perplex|xent|neg_log", re.I)
MAX_CHAIN = 8  # deepest call chain placed into a caller
REPORT_CALL = re.compile(r"^(?:print|log\w*|info|warning)$")
MAX_LOOP_PASSES = 4  # walks of a loop body before its labels are taken as stable


def name_labels(name: str) -> frozenset:
    lower = name.lower()
    labels = set()
    if VAL_NAME.search(lower) and not VAL_EXCLUDE.match(lower):
        labels.add(VAL)
    if TRAIN_NAME.search(lower):
        labels.add(TRAIN)
    return frozenset(labels)


def string_labels(text: str) -> frozenset:
    labels = set()
    if VAL_STRING.search(text):
        labels.add(VAL)
    if TRAIN_STRING.search(text):
        labels.add(TRAIN)
    return frozenset(labels)


def only_iter(labels) -> frozenset:
    return frozenset(label for label in labels if is_iter(label))


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
        self._class_attrs()
        order = program.analysis_order()
        for _ in range(3):  # labels found late (an __init__ or module code analysed after its users) need a new round
            before = (dict(self.attr_labels), {k: dict(v) for k, v in self.module_env.items()})
            for component in order:
                self._component(component)
            if before == (self.attr_labels, self.module_env):
                break

    def _class_attrs(self) -> None:
        for cls in self.program.classes.values():
            for stmt in cls.node.body:
                if isinstance(stmt, (ast.Assign, ast.AnnAssign)) and stmt.value is not None:
                    targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
                    labels = _static_labels(stmt.value)
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

    def _component(self, component: list[FunctionInfo]) -> None:
        for _ in range(4 if len(component) > 1 else 1):
            changed = False
            for fn in component:
                analyzer = FunctionAnalyzer(self, fn)
                analyzer.run()
                old = self.summaries.get(fn.key)
                self.summaries[fn.key] = analyzer.summary
                self.analyzers[fn.key] = analyzer
                if fn.qualname == MODULE_CODE:
                    self.module_env[fn.unit.label] = {name: frozenset(l for l in labels if l in (VAL, TRAIN))
                                                      for name, labels in analyzer.env.items() if labels & {VAL, TRAIN}}
                changed |= old is None or old.signature() != analyzer.summary.signature()
            if not changed:
                break

    def summary(self, fn: FunctionInfo) -> Summary:
        return self.summaries.get(fn.key, Summary())

    def events(self, fn: FunctionInfo) -> list[Event]:
        analyzer = self.analyzers.get(fn.key)
        return analyzer.events if analyzer else []


class FunctionAnalyzer:
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
        self.while_labels: list[str] = []
        self.def_sites: dict[str, list[tuple]] = {}  # name -> positions of its assignments, in walk order
        self.guards: list[tuple[str, bool]] = []  # (flag, polarity) of the ifs around the current statement

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
        returned_objects: set[str] = set()  # names whose object itself is returned (return delta.detach())
        reduced: set[str] = set()
        for stmt in self.fn.body:
            for node in _walk_local(stmt):
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
                    returned_objects |= _returned_objects(node.value)
                    if isinstance(node.value, (ast.BinOp, ast.Tuple)):
                        used = [n.id for n in ast.walk(node.value) if isinstance(n, ast.Name) and n.id in self.params and n.id != "self"]
                        if len(set(used)) > 1:
                            self.combines = tuple(dict.fromkeys(used))
                elif isinstance(node, (ast.Global, ast.Nonlocal)):
                    self.globals |= set(node.names)
                elif isinstance(node, ast.While):
                    self.loop_assigned[id(node)] = _assigned_names(node.body)
                elif isinstance(node, ast.Call):
                    calls.append(node)
                    if REPORT_CALL.match(last_name(self.canon(node.func)) or ""):
                        reported |= {n.id for a in node.args for n in ast.walk(a) if isinstance(n, ast.Name)}
        for node in calls:  # after every definition is known: picks follow names to their values
            self._prepass_call(node, reduced)
        self.returned = returned_objects
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
                index = _last_index(sub)
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
            var, offset = _linear(expr.slice)
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
        while isinstance(base, (ast.Subscript, ast.Attribute)) and not (isinstance(base, ast.Attribute) and _is_self(base.value)):
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
        is_sink = (isinstance(base, ast.Name) and base.id in self.sinks) or (isinstance(base, ast.Attribute) and _is_self(base.value))
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
                found = self.analysis.module_env.get(self.fn.unit.label, {}).get(node.id, frozenset())
            return found | name_labels(node.id)
        if isinstance(node, ast.Constant):
            return string_labels(node.value) if isinstance(node.value, str) else frozenset()
        if isinstance(node, ast.Attribute):
            base = self.expr(node.value)
            if node.attr in METADATA_ATTRS:
                return only_iter(base)
            return base | self.analysis.attr_labels.get(node.attr, frozenset()) | name_labels(node.attr)
        if isinstance(node, ast.Subscript):
            base = self.expr(node.value)
            key = self.expr(node.slice)
            if isinstance(node.ctx, ast.Load):
                self.cache_access(ev.CACHE_READ, node.value, node.slice, node, base)
            labels = base | key
            if VAL in base and _is_shift(node.slice):
                labels = labels | {TGT}
            if TGT in labels and _drops_last(node.slice) and self._is_target_window(node.value):
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
        var, offset = _linear(node.slice.upper)
        return any(base == t_base and var == t_var and offset > t_offset for t_base, t_var, t_offset in self.target_positions)

    # -- calls ---------------------------------------------------------------------------------------
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
            if not _write_mode(node):
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
        if _is_self(func.value) and self.fn.cls is not None:
            method = self.program.method(self.fn.cls, func.attr)
            return (method, not _is_static(method.node)) if method else None
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
            return method, not _is_static(method.node)
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
            return frozenset({"fresh"}) if not _mentions_parameters(node.func.value) else frozenset()
        if short in FACTORY_FUNCS and any(k.arg == "requires_grad" and not _falsy(k.value) for k in node.keywords):
            return frozenset({"fresh"})
        if short == "Parameter" and node.args and self.fn.name != "__init__":
            return frozenset({"fresh"})
        if name in ("open", "io.open", "builtins.open") and _write_mode(node) and _binary_mode(node):
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

    # -- identities: what is trained, which model scores, which container ------------------------------
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
            if _is_self(node.value) or node.attr not in ("forward", "forward_logits", "forward_ttt", "module", "_orig_mod"):
                return f"a:{node.attr}" if _is_self(node.value) else self.object_root(node.value, depth + 1)
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
            for node in _walk_local(stmt):
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
        seen: set[str] = set()
        todo: list[ast.AST] = [node]
        steps = 0
        while todo and steps < 200:
            current = todo.pop()
            steps += 1
            for sub in ast.walk(current):
                if isinstance(sub, ast.Call):
                    root = self._model_call_root(sub)
                    if root is not None:
                        return root
                elif isinstance(sub, ast.Name) and sub.id not in seen:
                    seen.add(sub.id)
                    todo.extend(self.defs.get(sub.id, [])[:6])
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


def _walk_local(node: ast.AST):
    """ast.walk that does not enter nested defs or lambdas (they are analysed on their own)."""
    todo = [node]
    while todo:
        current = todo.pop()
        yield current
        for child in ast.iter_child_nodes(current):
            if not isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
                todo.append(child)


def _assigned_names(body: list[ast.stmt]) -> set[str]:
    names = set()
    for stmt in body:
        for node in _walk_local(stmt):
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                names.add(node.id)
    return names


def _is_self(node: ast.expr) -> bool:
    return isinstance(node, ast.Name) and node.id in ("self", "cls")


def _is_static(node: ast.AST) -> bool:
    return any(isinstance(d, ast.Name) and d.id == "staticmethod" for d in getattr(node, "decorator_list", []))


def _is_shift(node: ast.expr) -> bool:
    """[1:] or [..., 1:] / [:, 1:]: the targets of a token stream."""
    if isinstance(node, ast.Tuple) and node.elts:
        node = node.elts[-1]
    return (isinstance(node, ast.Slice) and isinstance(node.lower, ast.Constant) and node.lower.value == 1
            and node.upper is None)


def _returned_objects(node: ast.expr) -> set[str]:
    """return x / return x.detach() / return a, b.clone(): the objects handed back (not values derived
    from them)."""
    if isinstance(node, ast.Tuple):
        return set().union(*(_returned_objects(e) for e in node.elts)) if node.elts else set()
    while isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and not node.args:
        node = node.func.value
    return {node.id} if isinstance(node, ast.Name) else set()


def _drops_last(node: ast.expr) -> bool:
    """[:-1]"""
    if not (isinstance(node, ast.Slice) and node.lower is None and node.upper is not None):
        return False
    upper = node.upper
    return (isinstance(upper, ast.UnaryOp) and isinstance(upper.op, ast.USub) and isinstance(upper.operand, ast.Constant)
            and upper.operand.value == 1) or (isinstance(upper, ast.Constant) and upper.value == -1)


def _last_index(node: ast.Subscript) -> ast.expr:
    index = node.slice
    return index.elts[-1] if isinstance(index, ast.Tuple) and index.elts else index


def _linear(node: ast.expr) -> tuple[str, int]:
    """t + 1 -> (dump(t), 1); t -> (dump(t), 0); t - 2 -> (dump(t), -2)."""
    if isinstance(node, ast.BinOp) and isinstance(node.right, ast.Constant) and isinstance(node.right.value, int):
        var, offset = _linear(node.left)
        if isinstance(node.op, ast.Add):
            return var, offset + node.right.value
        if isinstance(node.op, ast.Sub):
            return var, offset - node.right.value
    return ast.dump(node), 0


def _write_mode(node: ast.Call) -> bool:
    mode = node.args[1] if len(node.args) > 1 else next((k.value for k in node.keywords if k.arg == "mode"), None)
    return isinstance(mode, ast.Constant) and isinstance(mode.value, str) and any(c in mode.value for c in "wax+")


def _binary_mode(node: ast.Call) -> bool:
    mode = node.args[1] if len(node.args) > 1 else next((k.value for k in node.keywords if k.arg == "mode"), None)
    return isinstance(mode, ast.Constant) and isinstance(mode.value, str) and "b" in mode.value


def _falsy(node: ast.expr) -> bool:
    return isinstance(node, ast.Constant) and not node.value


def _mentions_parameters(node: ast.expr) -> bool:
    return any(isinstance(n, ast.Attribute) and n.attr in ("parameters", "named_parameters", "weight", "bias")
               for n in ast.walk(node))


def _static_labels(node: ast.expr) -> frozenset:
    labels = set()
    for sub in ast.walk(node):
        if isinstance(sub, ast.Constant) and isinstance(sub.value, str):
            labels |= string_labels(sub.value)
        elif isinstance(sub, ast.Name):
            labels |= name_labels(sub.id)
        elif isinstance(sub, ast.Attribute):
            labels |= name_labels(sub.attr)
    return frozenset(labels)
