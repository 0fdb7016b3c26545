"""The rule table is well formed, every rule has a detector, and every cited source exists in RULES.md."""

from __future__ import annotations

import re

import pytest

from harness.compliance.detectors import DETECTORS
from harness.compliance.ruleset import load_ruleset, parse_ruleset
from tests.conftest import SHARED

RULE_IDS = ["ttt_order", "slot", "val_in_training", "val_calibration", "train_data_at_eval", "target_in_key",
            "cache_update_before_score", "unnormalised_mixture", "network", "dynamic_code", "native_code",
            "outside_files", "env_probe"]


def test_rules_load_in_order_each_with_a_registered_detector() -> None:
    ruleset = load_ruleset()
    assert [r.id for r in ruleset.rules] == RULE_IDS
    assert all(r.detector in DETECTORS for r in ruleset.rules)
    assert ruleset.get("target_in_key").source() == "R4.4, R4.3.1 (#779, ruled 2026-03-27)"
    assert {r.severity for r in ruleset.rules} == {"flag", "review"}
    assert ruleset.of_family("ttt") == {"ttt_order", "slot"}
    assert ruleset.of_family("ttt", "val_training") == {"ttt_order", "slot", "val_in_training"}


def test_every_cited_section_and_pull_request_is_in_rules_md() -> None:
    rules_md = SHARED / "RULES.md"
    if not rules_md.is_file():
        pytest.skip(f"{rules_md} not present")
    text = rules_md.read_text(encoding="utf-8")
    for rule in load_ruleset().rules:
        for section in rule.sections:
            major, *minor = section.split(".", 2)
            if len(minor) == 2:  # R4.3.3: condition 3 of R4.3
                assert re.search(rf"- {major}\.{minor[0]} ", text) and re.search(rf"^\s+{minor[1]}\. ", text, re.M), section
            else:
                assert re.search(rf"- {re.escape(section)} ", text), f"{rule.id}: {section} not in RULES.md"
        for ref in rule.refs:
            if ref.startswith("#"):
                assert re.search(rf"{ref}\b", text), f"{rule.id}: {ref} not in RULES.md"
        if rule.date:
            assert rule.date in text


@pytest.mark.parametrize("row,message", [
    ({"id": "x"}, "lacks"),
    ({"id": "x", "title": "t", "forbids": "f", "allows": "a", "sections": [], "refs": [], "severity": "fatal",
      "detector": "d"}, "severity"),
    ({"id": "x", "title": "t", "forbids": "f", "allows": "a", "sections": [], "refs": [], "severity": "flag",
      "detector": "d", "family": "tta"}, "family"),
])
def test_malformed_tables_are_refused(row: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_ruleset({"rules": [row]})


def test_duplicate_ids_are_refused() -> None:
    row = {"id": "x", "title": "t", "forbids": "f", "allows": "a", "sections": [], "refs": [], "severity": "flag", "detector": "d"}
    with pytest.raises(ValueError, match="twice"):
        parse_ruleset({"rules": [row, row]})
