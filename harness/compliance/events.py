"""What the data-flow pass records: events (an update, a score, a cache read...) and where they sit.

An event found in a function is also placed in each caller, at the call site, with its labels
translated to the caller's arguments; detectors compare events of one function by position. A
position is the path of statement indices from the function body down to the statement; two events
are ordered when their paths part inside one block (same statements list), unordered when they part
in different branches of an if or try.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field, replace

# Labels a value can carry.
VAL, TRAIN, TGT = "val", "train", "target"  # validation tokens, training tokens, the token being scored
CONTENT = frozenset({VAL, TRAIN, TGT})
PARAM, ITER = "p:", "iter:"  # p:<name> = depends on parameter <name>; iter:<id> = changes per iteration of loop <id>

# Event kinds.
UPDATE = "update"  # backward()/autograd.grad: gradients of a loss, i.e. training on what the loss depends on
SCORE = "score"  # a loss/byte term accumulated into what the function reports
READ = "read"  # a file read (open, np.fromfile, np.memmap, torch.load, ...)
WRITE = "write"  # bytes written in binary mode or torch.save (an artifact)
CALIB = "calib"  # a calibration pass (forward hooks, Hessians) over some data
CACHE_WRITE = "cache_write"  # a container written at a key that depends on token content
CACHE_READ = "cache_read"  # a container read at a key that depends on token content
TARGET_COMPARE = "target_compare"  # the scored token compared with token-derived data
NATIVE_CALL = "native_call"  # a call into a loaded native library


def is_param(label: str) -> bool:
    return label.startswith(PARAM)


def is_iter(label: str) -> bool:
    return label.startswith(ITER)


def iter_label(loop: ast.AST) -> str:
    return f"{ITER}{id(loop)}"


Path = tuple  # ((id(parent), field, index), ...)


@dataclass(frozen=True)
class Event:
    kind: str
    taint: frozenset  # labels of the data the event is about
    unit: str  # where the code is: unit label ...
    line: int  # ... and line
    col: int
    func: str  # qualname of the function holding the code
    path: Path = ()  # position in the function that currently holds the event
    loops: tuple = ()  # ids of the loops around it there
    chain: tuple = ()  # functions called from the holder down to the code
    subject: str | None = None  # for updates: what is trained; for scores: which model produced the score
    detail: tuple = ()  # sorted (key, value) pairs, kind-specific
    site: tuple = ()  # (unit, line, col) of the call in the holder that placed it; () when found there
    node: ast.AST | None = field(default=None, compare=False, hash=False, repr=False)  # the code, when held by its own function

    def get(self, key: str, default=None):
        for k, v in self.detail:
            if k == key:
                return v
        return default

    @property
    def own(self) -> bool:
        """Found in the function that holds it (not placed there from a callee)."""
        return not self.chain

    def placed(self, path: Path, loops: tuple, callee: str, taint: frozenset, subject: str | None, detail: tuple,
               site: tuple) -> "Event":
        return replace(self, path=path, loops=loops, chain=(callee,) + self.chain, taint=taint, subject=subject,
                       detail=detail, node=None, site=site)

    def where(self) -> tuple:
        """(unit, line, col) in the holder: the code itself, or the call that leads to it."""
        return self.site or (self.unit, self.line, self.col)


def relation(a: Event, b: Event) -> str:
    """'before', 'after', 'same' (placed by one call) or 'unordered' (different branches)."""
    return order(a.path, b.path)


def order(path_a: Path, path_b: Path) -> str:
    """relation() for two positions."""
    if path_a == path_b:
        return "same"
    for step_a, step_b in zip(path_a, path_b):
        if step_a == step_b:
            continue
        parent_a, field_a, index_a = step_a
        parent_b, field_b, index_b = step_b
        if parent_a != parent_b:
            return "unordered"  # cannot happen for paths from one root, kept for safety
        if field_a == field_b:
            return "before" if index_a < index_b else "after"
        ranks = _FIELD_ORDER.get(field_a), _FIELD_ORDER.get(field_b)
        if None in ranks:
            return "unordered"  # the two branches of an if ("then"/"else"), or a match's cases
        return "before" if ranks[0] < ranks[1] else "after"
    return "same"  # one path is a prefix of the other: the same statement seen at two depths


def exclusive(a: Event, b: Event) -> bool:
    """The two events sit under opposite answers to one flag (if x: ... / if not x: ...)."""
    guards_a, guards_b = a.get("guards", ()), b.get("guards", ())
    return any((flag, not polarity) in guards_b for flag, polarity in guards_a)


# Sequential parts of a compound statement, in execution order. The walker names an if's branches
# "then" and "else", which are alternatives and so absent here.
_FIELD_ORDER = {"body": 0, "handlers": 1, "orelse": 2, "finalbody": 3}


def common_loop(a: Event, b: Event):
    """The innermost loop around both events in their holder, or None."""
    common = None
    for loop_a, loop_b in zip(a.loops, b.loops):
        if loop_a != loop_b:
            break
        common = loop_a
    return common
