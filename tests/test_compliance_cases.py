"""Every hand-written case in tests/compliance_cases/ is classified as its header says.

A case names its verdict (`# expect-verdict: ...`) and every flag, review or legal hit the scanner must
report (`# expect-hit: <rule> <outcome> <kind>`); a flag or review hit that is not listed fails the test,
so a case also pins what the scanner must not say.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from harness.compliance import scan_path

CASES = Path(__file__).resolve().parent / "compliance_cases"
_VERDICT = re.compile(r"^# expect-verdict: (\S+)$", re.M)
_HIT = re.compile(r"^# expect-hit: (\S+) (\S+) (\S+)$", re.M)


def _cases() -> list[Path]:
    return sorted(p for p in CASES.iterdir() if p.suffix == ".py" or p.is_dir())


def _expectations(case: Path) -> tuple[str, set[tuple[str, str, str]]]:
    header = (case / "train_gpt.py" if case.is_dir() else case).read_text(encoding="utf-8")
    verdict = _VERDICT.search(header)
    assert verdict, f"{case.name} has no '# expect-verdict:' line"
    return verdict.group(1), set(_HIT.findall(header))


@pytest.mark.parametrize("case", _cases(), ids=lambda p: p.name)
def test_case_is_classified_as_its_header_says(case: Path) -> None:
    verdict, expected = _expectations(case)
    report = scan_path(case)
    reported = {(h.rule, h.outcome, h.kind) for h in report.hits if h.outcome in ("flag", "review", "legal")}
    assert report.verdict == verdict, f"{case.name}: {report.reasons}"
    assert expected <= reported, f"{case.name}: missing {sorted(expected - reported)}; reported {sorted(reported)}"
    unexpected = {hit for hit in reported - expected if hit[1] in ("flag", "review")}
    assert not unexpected, f"{case.name}: unexpected {sorted(unexpected)}"


def test_every_rule_has_a_legal_and_an_illegal_case() -> None:
    """Each rule of rules.json is exercised by at least one case that must report it and one clean
    or legal case of the same family (the file name's first word)."""
    from harness.compliance import load_ruleset

    hit_rules = {rule for case in _cases() for rule, outcome, _ in _expectations(case)[1] if outcome in ("flag", "review")}
    missing = [rule.id for rule in load_ruleset().rules if rule.id not in hit_rules]
    assert not missing, f"rules no illegal case exercises: {missing}"
    families: dict[str, set[str]] = {}
    for case in _cases():
        families.setdefault(case.name.split("_")[0], set()).add(_expectations(case)[0])
    lonely = [name for name, verdicts in families.items() if not verdicts & {"clean", "clean_with_legal_ttt"}]
    assert not lonely, f"case families without a legal variant: {lonely}"
