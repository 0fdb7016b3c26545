"""Detectors: one function per rule of rules.json, registered under the rule's `detector` name.

A detector takes the scan context (sources, program index, data-flow analysis) and returns hits. A
hit is flag (a rule is broken), review (the detector saw something it cannot decide), legal (it
recognised a legal pattern worth reporting, such as score-first TTT) or note (something seen in a
file that is not part of the run). A detector that cannot run raises DetectorUnavailable.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from harness.compliance.flow import Analysis
from harness.compliance.program import Program
from harness.compliance.sources import RUN_ROLES, SourceSet, Unit

FLAG, REVIEW, LEGAL, NOTE = "flag", "review", "legal", "note"
OUTCOMES = (FLAG, REVIEW, LEGAL, NOTE)


class DetectorUnavailable(Exception):
    """The detector could not run; the message says why (the rule is then reported as skipped)."""


@dataclass
class Hit:
    rule: str
    outcome: str  # one of OUTCOMES
    kind: str  # what was recognised, e.g. "ttt_before_scoring", "legal_score_first_ttt"
    unit: str  # label of the unit holding the code
    line: int | None
    reason: str  # one sentence
    col: int | None = None
    related: list[tuple[str, int]] = field(default_factory=list)  # other lines that make the case (unit, line)
    guards: tuple = ()  # (setting, polarity) of the ifs the code runs under, e.g. (("slot_enabled", True),)

    def origin(self) -> tuple:
        return (self.rule, self.unit, self.line, self.col)


@dataclass
class Context:
    """One program: an entry script with what it reaches, or one auxiliary script."""

    sources: SourceSet
    units: list[Unit]
    program: Program
    analysis: Analysis
    cache: dict = field(default_factory=dict)  # shared work between detectors of one program

    def unit(self, label: str) -> Unit | None:
        return self.sources.unit(label)

    def in_run(self, label: str) -> bool:
        unit = self.unit(label)
        return unit is not None and unit.role in RUN_ROLES

    def parsed_units(self) -> list[Unit]:
        return [u for u in self.units if u.tree is not None]

    def events(self, kind: str | None = None):
        """(function, event) for every event every function holds (its own and those placed there)."""
        for fn in self.program.functions.values():
            for event in self.analysis.events(fn):
                if kind is None or event.kind == kind:
                    yield fn, event


def event_hit(rule: str, outcome: str, kind: str, event, reason: str, *related) -> Hit:
    """A hit at an event's code, with the other events that make the case as related lines and the
    settings guarding any of them."""
    guards = tuple(dict.fromkeys(g for e in (event,) + related for g in e.get("guards", ())))
    return Hit(rule=rule, outcome=outcome, kind=kind, unit=event.unit, line=event.line, col=event.col, reason=reason,
               related=[(r.unit, r.line) for r in related], guards=guards)


DETECTORS: dict[str, Callable[[Context], list[Hit]]] = {}


def detector(name: str):
    def register(function: Callable[[Context], list[Hit]]):
        DETECTORS[name] = function
        return function

    return register


from harness.compliance.detectors import caches, escapes, training  # noqa: E402,F401  (they register themselves)
