"""The compliance rules as data: load rules.json into Rule records and check the table is well formed.

Adding a rule is adding a row to rules.json and a detector function registered under its name
(harness/compliance/detectors/); the engine never changes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

FLAG, REVIEW = "flag", "review"
SEVERITIES = (FLAG, REVIEW)
# Rules the engine weighs together (the optional "family" column): TTT rules judge test-time training,
# so a legal hit of one is legal TTT; VAL_TRAINING rules judge updates on validation tokens outside
# score-first evaluation. A flag of either family at a line overrides a TTT rule's legal or review hit there.
TTT, VAL_TRAINING = "ttt", "val_training"
FAMILIES = (TTT, VAL_TRAINING)
_REQUIRED = ("id", "title", "forbids", "allows", "sections", "refs", "severity", "detector")


@dataclass(frozen=True)
class Rule:
    id: str  # stable; findings are reported as compliance.<id>
    title: str
    forbids: str
    allows: str
    sections: tuple[str, ...]  # ../shared/RULES.md sections, e.g. ("R4.2", "R4.3.3")
    refs: tuple[str, ...]  # README or challenge pull requests, e.g. ("#779",)
    severity: str  # what a sure hit means: flag or review
    detector: str  # name of the detector function
    date: str | None = None  # date of the ruling where RULES.md gives one
    family: str | None = None  # one of FAMILIES, or None for a rule the engine weighs alone

    def source(self) -> str:
        dated = f", ruled {self.date}" if self.date else ""
        return f"{', '.join(self.sections)} ({', '.join(self.refs)}{dated})"


@dataclass(frozen=True)
class RuleSet:
    name: str
    version: str
    rules: tuple[Rule, ...]

    def get(self, rule_id: str) -> Rule:
        for rule in self.rules:
            if rule.id == rule_id:
                return rule
        raise KeyError(rule_id)

    def of_family(self, *families: str) -> frozenset[str]:
        """The ids of the rules in any of `families`."""
        return frozenset(rule.id for rule in self.rules if rule.family in families)


def parse_ruleset(document: dict) -> RuleSet:
    """Validate a rules document; a malformed table is a bug in the harness, so it raises ValueError."""
    rows = document.get("rules")
    if not isinstance(rows, list) or not rows:
        raise ValueError("rules.json: 'rules' must be a non-empty list")
    rules, seen = [], set()
    for row in rows:
        missing = [key for key in _REQUIRED if key not in row]
        if missing:
            raise ValueError(f"rules.json: rule {row.get('id', '?')} lacks {', '.join(missing)}")
        if row["severity"] not in SEVERITIES:
            raise ValueError(f"rules.json: rule {row['id']} has severity {row['severity']!r}")
        if row.get("family") is not None and row["family"] not in FAMILIES:
            raise ValueError(f"rules.json: rule {row['id']} has family {row['family']!r}")
        if row["id"] in seen:
            raise ValueError(f"rules.json: rule id {row['id']} is given twice")
        seen.add(row["id"])
        rules.append(Rule(
            id=row["id"], title=row["title"], forbids=row["forbids"], allows=row["allows"],
            sections=tuple(row["sections"]), refs=tuple(row["refs"]), severity=row["severity"],
            detector=row["detector"], date=row.get("date"), family=row.get("family"),
        ))
    return RuleSet(name=document.get("ruleset", "rules"), version=str(document.get("version", "")), rules=tuple(rules))


@lru_cache(maxsize=1)
def load_ruleset() -> RuleSet:
    text = resources.files("harness.compliance").joinpath("rules.json").read_text(encoding="utf-8")
    return parse_ruleset(json.loads(text))
