"""Detectors about what is trained on what, and when: TTT order, SLOT, validation data in training,
calibration on validation tokens, training data at evaluation time.

The question for every update on validation tokens (backward() or autograd.grad of a loss that depends
on them) is whether the tokens it trains on were scored before it. The answer comes from the function
that holds both the update and a score (the update's own function, or a caller where the callee's
events are placed at the call site):

- in one loop, score before update, both depending on the loop's iteration: score-first TTT (legal);
- in one loop, update before score: trained on the chunk, then scored it (flag), unless the update's
  data are a prefix slice [:a] of what the score uses from [a:] (a per-window bias fitted on context);
- in one loop, update on validation data that does not change per iteration of a loop whose score
  does not either (the training loop with periodic validation): validation data in training (flag);
- no common loop, update before score: trained on validation tokens before scoring them (flag;
  val_in_training when the artifact is written in between: pre-quantisation TTT);
- score before update with no common loop: the update cannot change the score (ignored).
An update paired nowhere is reported for review.
"""

from __future__ import annotations

import ast

from harness.compliance import events as ev
from harness.compliance.detectors import FLAG, LEGAL, REVIEW, Context, Hit, detector, event_hit
from harness.compliance.events import TRAIN, VAL, Event, common_loop, exclusive, order, relation


def _where(event: Event) -> str:
    via = f" (in {' → '.join(event.chain)})" if event.chain else ""
    return f"line {event.line}{via}"


def _paired(update: Event, score: Event) -> bool:
    """Whether the update can change what the score measures: the same model, an unknown one, or an
    adapter trained here and handed to the scoring call."""
    if exclusive(update, score):
        return False  # if x: train ... / if not x: score ...
    if update.own and score.own:
        return True
    if update.own and (update.subject or "").startswith("l:"):  # an adapter or tensor made in this function
        if common_loop(update, score) is not None:
            return True
        return update.subject == score.subject or update.subject in score.get("call_roots", ())
    if update.subject is None or score.subject is None or update.subject == score.subject:
        return True
    return update.subject in score.get("call_roots", ())


def _probe(ctx: Context, fn_key: str, update: Event, score: Event) -> bool:
    """A torch.nn layer built here, trained and scored here (a linear probe on hidden states): a
    diagnostic of its own, not the submission's model or score."""
    if not (update.own and score.own and update.subject and update.subject == score.subject and update.subject.startswith("l:")):
        return False
    analyzer = ctx.analysis.analyzers.get(fn_key)
    built = analyzer.constructor_of(update.subject.rsplit(":", 1)[-1]) if analyzer else None
    return bool(built) and built.startswith("torch.nn.")


def _local_warmup(update: Event, score: Event) -> bool:
    """An adapter or tensor created here, trained, and not given to the scoring call: a warm-up pass."""
    return (update.own and (update.subject or "").startswith("l:") and not _paired(update, score)
            and not exclusive(update, score))


_PURE_METHODS = frozenset({"sum", "mean", "item", "detach", "float", "double", "to", "cpu", "clone", "view", "reshape",
                           "flatten", "squeeze", "unsqueeze", "numel", "masked_select", "nansum", "tolist"})


def _predates(ctx: Context, fn_key: str, update: Event, score: Event) -> bool:
    """The scored value was computed before the update (loss = f(x); backward(); step(); total += loss):
    every name the score accumulates was last assigned before the update."""
    analyzer = ctx.analysis.analyzers.get(fn_key)
    node = score.node
    if analyzer is None or node is None or not (update.own and score.own):
        return False
    value = node.value if isinstance(node, ast.AugAssign) else node
    for call in (n for n in ast.walk(value) if isinstance(n, ast.Call)):
        if not (isinstance(call.func, ast.Attribute) and call.func.attr in _PURE_METHODS or
                isinstance(call.func, ast.Name) and call.func.id in ("float", "int")):
            return False  # the score runs the model (or something unknown) itself, after the update
    names = {n.id for n in ast.walk(value) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
    names -= {node.target.id} if isinstance(node, ast.AugAssign) and isinstance(node.target, ast.Name) else set()
    if not names:
        return False
    for name in names:
        sites = [p for p in analyzer.def_sites.get(name, []) if order(p, score.path) == "before"]
        if sites and any(order(p, update.path) != "before" for p in sites[-1:]):
            return False
    return True


def _slice_facts(analyzer, node: ast.AST) -> dict[str, set[tuple[str, str]]]:
    """For each sliced base in the data an expression depends on: {('upper', a)} for x[:a],
    {('lower', a)} for x[a:...], ('whole', '') for x[:]."""
    facts: dict[str, set[tuple[str, str]]] = {}
    for sub in analyzer.data_nodes(node):
        if not isinstance(sub, ast.Subscript):
            continue
        index = sub.slice.elts[-1] if isinstance(sub.slice, ast.Tuple) and sub.slice.elts else sub.slice
        if isinstance(index, ast.Slice):
            base = ast.dump(sub.value)
            if index.lower is None and index.upper is not None:
                facts.setdefault(base, set()).add(("upper", ast.dump(index.upper)))
            elif index.lower is not None:
                facts.setdefault(base, set()).add(("lower", ast.dump(index.lower)))
            else:
                facts.setdefault(base, set()).add(("whole", ""))
    return facts


def _prefix_only(ctx: Context, fn_key: str, update: Event, score: Event) -> bool:
    """The update's data are x[:a] and the score's are x[a:...] for some base x (a context-only fit)."""
    analyzer = ctx.analysis.analyzers.get(fn_key)
    if analyzer is None or update.node is None or score.node is None:
        return False
    trained, scored = _slice_facts(analyzer, update.node), _slice_facts(analyzer, score.node)
    proven = False
    for base, kinds in trained.items():
        other = scored.get(base)
        if not other:
            continue
        uppers = {bound for kind, bound in kinds if kind == "upper"}
        lowers = {bound for kind, bound in other if kind == "lower"}
        if len(uppers) == 1 and kinds == {("upper", b) for b in uppers} and other == {("lower", b) for b in uppers}:
            proven = True
        elif uppers & lowers or ("whole", "") in kinds or ("whole", "") in other:
            return False
    return proven


def _classify(ctx: Context) -> list[Hit]:
    if "updates" in ctx.cache:
        return ctx.cache["updates"]
    hits: list[Hit] = []
    decided: set[tuple] = set()
    val_updates: dict[tuple, Event] = {}
    for fn in ctx.program.functions.values():
        events = ctx.analysis.events(fn)
        updates = [e for e in events if e.kind == ev.UPDATE and VAL in e.taint]
        if not updates:
            continue
        scores = [e for e in events if e.kind == ev.SCORE and VAL in e.taint]
        writes = [e for e in events if e.kind == ev.WRITE]
        for update in updates:
            origin = (update.unit, update.line, update.col)
            val_updates.setdefault(origin, update)
            for score in scores:
                position = relation(update, score)
                if position in ("same", "unordered") or _probe(ctx, fn.key, update, score):
                    continue
                if _local_warmup(update, score):
                    decided.add(origin)
                    if position == "before":
                        hits.append(event_hit("ttt_order", REVIEW, "warmup_on_val", update,
                                              f"{fn.qualname} runs backward()/step on validation tokens ({_where(update)}) with a "
                                              f"throwaway adapter before scoring ({_where(score)}): a TTT warm-up or compile pass on "
                                              "real validation tokens, reviewed case by case (#1530, #677)", score))
                    continue
                if not _paired(update, score):
                    continue
                decided.add(origin)
                if position == "before" and common_loop(update, score) is not None and _predates(ctx, fn.key, update, score):
                    position = "after"  # the score is the loss computed before this update
                hit = _judge_pair(ctx, fn, update, score, position, writes)
                if hit is not None:
                    hits.append(hit)
    for origin, update in val_updates.items():
        if origin not in decided and not (update.subject or "").startswith("l:"):
            hits.append(event_hit("ttt_order", REVIEW, "ttt_unpaired", update,
                                  f"{update.func} trains on validation tokens ({update.get('how', 'backward()')} at line {update.line}), "
                                  "and the scanner found no score it could order that update against"))
    ctx.cache["updates"] = hits
    return hits


def _judge_pair(ctx: Context, fn, update: Event, score: Event, position: str, writes: list[Event]) -> Hit | None:
    rule = "slot" if update.get("update_target") == "fresh" else "ttt_order"
    what = "a per-sample tensor" if rule == "slot" else "the model"
    loop = common_loop(update, score)
    if loop is not None:
        label = f"{ev.ITER}{loop}"
        if position == "after":  # scored first, trained after, in one iteration
            if label in update.taint and label in score.taint:
                if _looks_ahead(ctx, fn.key, update, loop):
                    return event_hit(rule, FLAG, "ttt_before_scoring", update,
                                     f"{fn.qualname} scores a chunk ({_where(score)}) and then trains {what} on a later one "
                                     f"({_where(update)}: its data start at the loop's next index), before that one is scored",
                                     score)
                repeat = _repeating_loop(update, score, loop)
                if repeat is not None:
                    return event_hit(rule, REVIEW, "multi_pass_scoring", update,
                                     f"{fn.qualname} scores chunks before training on them ({_where(score)}, {_where(update)}), "
                                     "but an outer loop runs that pass again over the same tokens, so later passes score "
                                     "tokens already trained on (single pass, R4.3.4; multi-epoch TTT is reviewed case by case, #1698)",
                                     score)
                kind = "legal_score_first_slot" if rule == "slot" else "legal_score_first_ttt"
                return event_hit(rule, LEGAL, kind, update,
                                 f"{fn.qualname} scores each chunk ({_where(score)}) before training {what} on it ({_where(update)}): score-first",
                                 score)
            if label not in score.taint:  # the score measures the whole split each turn: a training loop
                return event_hit("val_in_training", FLAG, "val_in_training_loop", update,
                                 f"{fn.qualname} trains on validation tokens ({_where(update)}) in a loop whose scoring ({_where(score)}) "
                                 "measures the whole split each turn, as a training loop with periodic validation", score)
            return event_hit(rule, FLAG, "ttt_before_scoring", update,
                             f"{fn.qualname} trains {what} ({_where(update)}) on validation data that is not limited to the chunk "
                             f"scored before it ({_where(score)}), so later tokens are trained on before they are scored", score)
        if update.own and score.own and _prefix_only(ctx, fn.key, update, score):
            return event_hit(rule, LEGAL, "legal_context_only_fit", update,
                             f"{fn.qualname} fits {what} ({_where(update)}) only on the context slice [:a] of a window before scoring "
                             f"its [a:] positions ({_where(score)}), tokens that earlier windows scored", score)
        kind = "slot_before_scoring" if rule == "slot" else "ttt_before_scoring"
        return event_hit(rule, FLAG, kind, update,
                         f"{fn.qualname} trains {what} on validation tokens ({_where(update)}) and then scores them in the same "
                         f"iteration ({_where(score)}): the update uses tokens before they are scored", score)
    if position == "before":
        written = [w for w in writes if relation(update, w) == "before" and relation(w, score) == "before"]
        if written:
            return event_hit("val_in_training", FLAG, "pre_quantisation_ttt", update,
                             f"{fn.qualname} trains on validation tokens ({_where(update)}) before the artifact is written "
                             f"({_where(written[0])}) and scored ({_where(score)}): validation data in training (pre-quantisation TTT)",
                             written[0], score)
        return event_hit(rule, FLAG, "ttt_before_scoring", update,
                         f"{fn.qualname} trains {what} on validation tokens ({_where(update)}) before scoring them ({_where(score)})",
                         score)
    return None  # every score precedes the update: it cannot change them


def _looks_ahead(ctx: Context, fn_key: str, update: Event, loop) -> bool:
    """The update's data start at index i + k (k > 0) of the loop over i: x[(ci + 1) * C : ...]."""
    analyzer = ctx.analysis.analyzers.get(fn_key)
    node = analyzer.loop_nodes.get(loop) if analyzer else None
    if not (update.own and isinstance(node, (ast.For, ast.AsyncFor)) and isinstance(node.target, ast.Name)):
        return False
    variable = node.target.id
    for sub in analyzer.data_nodes(update.node):
        if isinstance(sub, ast.Subscript):
            index = sub.slice.elts[-1] if isinstance(sub.slice, ast.Tuple) and sub.slice.elts else sub.slice
            if isinstance(index, ast.Slice) and index.lower is not None and _ahead(analyzer, index.lower, variable, 0):
                return True
    return False


def _ahead(analyzer, node: ast.AST, variable: str, depth: int) -> bool:
    """(i + k) * size in plain arithmetic (names followed to arithmetic definitions, never into calls):
    the start of a later chunk. i + 1 alone is the one-token shift of targets, not a later chunk."""
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult):
        for side in (node.left, node.right):
            if isinstance(side, ast.BinOp) and isinstance(side.op, ast.Add) and _plus_constant(side, variable):
                return True
    if isinstance(node, ast.BinOp):
        return _ahead(analyzer, node.left, variable, depth) or _ahead(analyzer, node.right, variable, depth)
    if isinstance(node, ast.Name) and node.id != variable and depth < 3:
        values = analyzer.defs.get(node.id, [])
        return len(values) == 1 and isinstance(values[0], (ast.BinOp, ast.Name)) and _ahead(analyzer, values[0], variable, depth + 1)
    return False


def _plus_constant(node: ast.BinOp, variable: str) -> bool:
    sides = (node.left, node.right)
    return any(isinstance(a, ast.Name) and a.id == variable for a in sides) and any(
        isinstance(b, ast.Constant) and isinstance(b.value, int) and b.value > 0 for b in sides)


def _repeating_loop(update: Event, score: Event, loop) -> int | None:
    """A loop around the score-first loop whose turns do not change what is scored (for epoch in ...)."""
    outer = score.loops[:score.loops.index(loop)] if loop in score.loops else ()
    for candidate in outer:
        if candidate in update.loops and f"{ev.ITER}{candidate}" not in score.taint:
            return candidate
    return None


def _for_rule(ctx: Context, rule: str) -> list[Hit]:
    return [h for h in _classify(ctx) if h.rule == rule]


@detector("ttt_order")
def ttt_order(ctx: Context) -> list[Hit]:
    return _for_rule(ctx, "ttt_order")


@detector("slot")
def slot(ctx: Context) -> list[Hit]:
    return _for_rule(ctx, "slot")


@detector("val_in_training")
def val_in_training(ctx: Context) -> list[Hit]:
    hits = _for_rule(ctx, "val_in_training")
    for fn, event in ctx.events(ev.WRITE):
        if event.own and VAL in event.taint:
            hits.append(event_hit("val_in_training", FLAG, "val_in_artifact", event,
                                  f"{fn.qualname} writes data derived from validation tokens into a file at line {event.line} "
                                  "(a 'paid prefix' of the validation split in the artifact)"))
    return hits


@detector("val_calibration")
def val_calibration(ctx: Context) -> list[Hit]:
    hits = []
    for fn, event in ctx.events(ev.CALIB):
        if event.own and VAL in event.taint:
            hits.append(event_hit("val_calibration", FLAG, "calibration_on_val", event,
                                  f"{fn.qualname} runs the calibration pass {event.get('callee')} on validation tokens (line {event.line})"))
    return hits


@detector("train_data_at_eval")
def train_data_at_eval(ctx: Context) -> list[Hit]:
    hits = []
    for fn in ctx.program.functions.values():
        events = ctx.analysis.events(fn)
        writes = [e for e in events if e.kind == ev.WRITE]
        if not writes:
            continue
        last = writes[-1]
        for event in events:
            if event.kind in (ev.READ, ev.CALIB) and TRAIN in event.taint and relation(last, event) == "before":
                what = "reads training shards" if event.kind == ev.READ else f"calibrates ({event.get('callee')}) on training data"
                unit, line, col = event.where()
                via = f" through {' → '.join(event.chain)} (line {event.line})" if event.chain else ""
                hits.append(Hit(rule="train_data_at_eval", outcome=FLAG, kind="train_data_after_artifact", unit=unit, line=line,
                                col=col, related=[(event.unit, event.line), (last.unit, last.line)],
                                guards=event.get("guards", ()),
                                reason=f"{fn.qualname} {what} at line {line}{via} after the artifact is written "
                                       f"({_where(last)}), i.e. during evaluation"))
    return hits
