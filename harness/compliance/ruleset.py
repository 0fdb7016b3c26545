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
        if row["id"] in seen:
            raise ValueError(f"rules.json: rule id {row['id']} is given twice")
        seen.add(row["id"])
        rules.append(Rule(
            id=row["id"], title=row["title"], forbids=row["forbids"], allows=row["allows"],
            sections=tuple(row["sections"]), refs=tuple(row["refs"]), severity=row["severity"],
            detector=row["detector"], date=row.get("date"),
        ))
    return RuleSet(name=document.get("ruleset", "rules"), version=str(document.get("version", "")), rules=tuple(rules))


@lru_cache(maxsize=1)
def load_ruleset() -> RuleSet:
    text = resources.files("harness.compliance").joinpath("rules.json").read_text(encoding="utf-8")
    return parse_ruleset(json.loads(text))
