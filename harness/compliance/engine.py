"""The scan: load the sources, analyse them, run every rule's detector, and conclude.

Verdicts: `flag` (a rule is broken), `needs_review` (a detector saw something it cannot decide, a
run file could not be parsed, or there was nothing to scan), `clean_with_legal_ttt` (only legal
test-time training was found), `clean`. Hits in files the run does not reach are notes and never
change the verdict. As findings (harness.findings): flag -> fail, review -> warn, legal -> pass with
what was recognised, no hit -> pass per rule; a rule whose detector could not run -> skip with why.
"""

from __future__ import annotations

import ast
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from harness.compliance.detectors import DETECTORS, FLAG, LEGAL, NOTE, REVIEW, Context, DetectorUnavailable, Hit
from harness.compliance.detectors.escapes import env_reads
from harness.compliance.flow import Analysis
from harness.compliance.program import Program
from harness.compliance.ruleset import TTT, VAL_TRAINING, Rule, RuleSet, load_ruleset
from harness.compliance.settings import Setting, env_settings, logged_state
from harness.compliance.sources import ENTRY, REACHED, RUN_ROLES, SourceSet, Unit, sources_for_path, sources_for_submission
from harness.errors import UserError
from harness.findings import FAIL, PASS, SKIP, WARN, Evidence, Finding
from harness.submission.logs import parse_submission_logs
from harness.submission.script import backing_logs, closest_file, code_texts, counted_script

CLEAN, CLEAN_WITH_LEGAL_TTT, NEEDS_REVIEW, FLAGGED = "clean", "clean_with_legal_ttt", "needs_review", "flag"
VERDICTS = (CLEAN, CLEAN_WITH_LEGAL_TTT, NEEDS_REVIEW, FLAGGED)
_STATUS = {FLAG: FAIL, REVIEW: WARN, LEGAL: PASS}
_OUTCOME_RANK = {FLAG: 0, REVIEW: 1, LEGAL: 2, NOTE: 3}


@dataclass
class ScanReport:
    path: str
    verdict: str
    reasons: list[str]  # why the verdict is what it is, one sentence each
    hits: list[Hit]
    ruleset: RuleSet
    skipped: dict[str, str]  # rule id -> why its detector did not run
    files: list[dict[str, Any]]
    env_vars: dict[str, list[str]]
    elapsed_s: float
    sources: SourceSet | None = field(default=None, repr=False)

    def hits_for(self, rule_id: str) -> list[Hit]:
        return [h for h in self.hits if h.rule == rule_id]

    def findings(self) -> list[Finding]:
        return [self._sources_finding()] + [f for rule in self.ruleset.rules for f in self._rule_findings(rule)]

    def _evidence(self, hit: Hit) -> Evidence:
        unit = self.sources.unit(hit.unit) if self.sources else None
        excerpt = unit.excerpt(hit.line, hit.col) if unit is not None else None
        values: dict[str, Any] = {"kind": hit.kind}
        if hit.related:
            values["related"] = [f"{u}:{line}" for u, line in hit.related]
        return Evidence(file=hit.unit, line=hit.line, excerpt=excerpt or None, values=values)

    def _rule_findings(self, rule: Rule) -> list[Finding]:
        check = f"compliance.{rule.id}"
        hits = self.hits_for(rule.id)
        found = [h for h in hits if h.outcome != NOTE]
        notes = [h for h in hits if h.outcome == NOTE]
        if rule.id in self.skipped and not found:
            return [Finding(check, SKIP, f"not checked: {self.skipped[rule.id]}")]
        out = [Finding(check, _STATUS[h.outcome], f"{_prefix(h, rule)}{h.reason} [{rule.source()}]", [self._evidence(h)]) for h in found]
        if not found:
            noted = f"; {len(notes)} note(s) in files the run does not reach" if notes else ""
            out.append(Finding(check, PASS, f"{rule.title}: nothing found{noted}", [self._evidence(h) for h in notes]))
        return out

    def _sources_finding(self) -> Finding:
        run = [f for f in self.files if f["role"] in RUN_ROLES]
        broken = [f for f in run if f.get("error")]
        evidence = [Evidence(file=f["label"], values={k: v for k, v in f.items() if k not in ("label",) and v is not None})
                    for f in self.files]
        if not run:
            return Finding("compliance.sources", WARN, "no Python code to scan: nothing that runs could be checked", evidence)
        if broken:
            names = ", ".join(f"{f['label']} ({f['error']})" for f in broken)
            return Finding("compliance.sources", WARN, f"could not parse {names}; rules were checked on the rest only", evidence)
        described = ", ".join(f"{f['label']} ({f['role']}, {f['lines']:,} lines)" for f in run)
        return Finding("compliance.sources", PASS, f"scanned {described}", evidence)

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "verdict": self.verdict,
            "reasons": self.reasons,
            "ruleset": {"name": self.ruleset.name, "version": self.ruleset.version},
            "files": self.files,
            "findings": [_finding_dict(f) for f in self.findings()],
            "hits": [{"rule": h.rule, "outcome": h.outcome, "kind": h.kind, "file": h.unit, "line": h.line, "reason": h.reason,
                      "related": [f"{u}:{line}" for u, line in h.related]} for h in self.hits],
            "skipped": self.skipped,
            "env_vars": self.env_vars,
            "elapsed_s": round(self.elapsed_s, 4),
        }


def _prefix(hit: Hit, rule: Rule) -> str:
    return "legal: " if hit.outcome == LEGAL and rule.family == TTT else ""


def _finding_dict(finding: Finding) -> dict[str, Any]:
    evidence = []
    for item in finding.evidence:
        entry = {k: v for k, v in (("file", item.file), ("line", item.line), ("excerpt", item.excerpt)) if v is not None}
        if item.values:
            entry["values"] = item.values
        evidence.append(entry)
    return {"check": finding.check, "status": finding.status, "message": finding.message, "evidence": evidence}


def scan_path(path: str | Path, ruleset: RuleSet | None = None) -> ScanReport:
    """Scan a submission folder or a single Python file. Raises UserError for a path that is not there."""
    target = Path(path)
    if not target.exists():
        raise UserError("no such file or folder", target)
    if target.is_file() and target.suffix != ".py":
        raise UserError("is not a Python file; give a .py file or a submission folder", target)
    if target.is_dir():  # a folder: its logs can say which off-by-default settings the run turned on
        from harness.submission.folder import load_submission

        return scan_submission(load_submission(target), ruleset)
    started = time.perf_counter()
    sources = sources_for_path(target)
    return _scan(str(target), sources, ruleset or load_ruleset(), started)


def scan_submission(submission, ruleset: RuleSet | None = None) -> ScanReport:
    """Scan a folder already loaded by harness.submission.load_submission (what `harness check` holds)."""
    started = time.perf_counter()
    return _scan(str(submission.path), sources_for_submission(submission), ruleset or load_ruleset(), started,
                 submission)


def programs(sources: SourceSet) -> list[list[Unit]]:
    """Scripts that run on their own: each entry (with its decoded payloads) plus the units it reaches,
    and each auxiliary file by itself. Two entries never share a program, so same-named functions of
    two scripts do not mix."""
    reached = [u for u in sources.units if u.role == REACHED]
    groups: dict[str, list[Unit]] = {}
    for unit in sources.units:
        if unit.role != REACHED:
            groups.setdefault(unit.relpath, []).append(unit)
    out = []
    for relpath, units in groups.items():
        out.append(units + reached if units[0].role == ENTRY else units)
    if not any(u.role == ENTRY for u in sources.units) and reached:
        out.append(reached)
    return out


def _scan(path: str, sources: SourceSet, ruleset: RuleSet, started: float, submission=None) -> ScanReport:
    skipped: dict[str, str] = {}
    hits: list[Hit] = []
    run = sources.run_units()
    env: dict[str, list[str]] = {}
    if not _has_code(run):
        skipped = {rule.id: NO_CODE for rule in ruleset.rules}
    for units in (programs(sources) if run else []):
        try:
            program = Program(units)
            context = Context(sources=sources, units=units, program=program, analysis=Analysis(program))
        except RecursionError:
            for rule in ruleset.rules:
                skipped.setdefault(rule.id, f"{units[0].relpath} is nested too deeply to analyse")
            continue
        for rule in ruleset.rules:
            try:
                hits += DETECTORS[rule.detector](context)
            except DetectorUnavailable as error:
                skipped.setdefault(rule.id, str(error))
            except RecursionError:
                skipped.setdefault(rule.id, f"{units[0].relpath} is nested too deeply for this detector")
        env.update(env_reads(context))
    broken = [u.label for u in run if u.error]
    if broken:  # a rule with no hit cannot pass when part of the run was not read
        for rule in ruleset.rules:
            skipped.setdefault(rule.id, f"{', '.join(broken)} could not be parsed, so the run was not fully read")
    settings = env_settings(run)
    logs = _claim_logs(submission)
    hits = _dedupe([_unless_enabled(_scope(h, sources), settings, submission, _logs_of(h, sources, submission, logs))
                    for h in hits], ruleset)
    verdict, reasons = _verdict(hits, sources, skipped, ruleset)
    files = [{"label": u.label, "role": u.role, "lines": len(u.lines), "wrapped_by": u.wrapped_by, "parsed_with": u.parsed_with,
              "error": u.error} for u in sources.units]
    return ScanReport(path=path, verdict=verdict, reasons=reasons, hits=hits, ruleset=ruleset, skipped=skipped, files=files,
                      env_vars=env, elapsed_s=time.perf_counter() - started, sources=sources)


def _scope(hit: Hit, sources: SourceSet) -> Hit:
    """Hits in files the run does not reach are notes."""
    unit = sources.unit(hit.unit)
    if hit.outcome in (FLAG, REVIEW) and unit is not None and unit.role not in RUN_ROLES:
        hit.outcome = NOTE
    return hit


def _unless_enabled(hit: Hit, settings: dict[str, Setting], submission, logs: list[str]) -> Hit:
    """A flagged path that runs only when an off-by-default setting is turned on is for review, unless
    the logs behind the claim show the setting on: then it ran, and stays flagged with the log line as
    evidence (settings.logged_state)."""
    if hit.outcome != FLAG:
        return hit
    off = [settings[flag] for flag, polarity in hit.guards if polarity and flag in settings and settings[flag].off_by_default]
    if not off:
        return hit
    setting = off[0]
    state = logged_state(setting, submission, logs) if submission is not None and logs else None
    if state is not None and state.enabled:
        hit.related.append((state.log, state.line))
        hit.reason += (f" — this path runs only when {setting.env} is set (default {setting.default!r}, off), and the "
                       f"run enabled it: {state.log}:{state.line} `{state.text}`")
        return hit
    hit.outcome = REVIEW
    if state is not None:
        hit.reason += (f" — this path runs only when {setting.env} is set (default {setting.default!r}, off); the run "
                       f"left it off ({state.log}:{state.line} `{state.text}`)")
    else:
        hit.reason += (f" — this path runs only when {setting.env} is set (default {setting.default!r}, off); check the "
                       "official run did not enable it")
    return hit


def _logs_of(hit: Hit, sources: SourceSet, submission, logs: list[str]) -> list[str]:
    """Of the claim's logs, those a run of the hit's file wrote: the log embeds that file (it resembles
    it most), or embeds nothing and that file is the submission's script."""
    unit = sources.unit(hit.unit)
    if unit is None or not logs or hit.outcome != FLAG:
        return []
    parsed = parse_submission_logs(submission)
    code = code_texts(submission)
    script = counted_script(submission, parsed).relpath
    ran = {name: (closest_file(code, parsed[name].script) or (None,))[0] if parsed[name].script else script
           for name in logs}
    return [name for name in logs if ran[name] == unit.relpath]


def _claim_logs(submission) -> list[str]:
    """The logs behind the claimed score (every log when no claim matched); none for a single file."""
    if submission is None:
        return []
    return backing_logs(submission, parse_submission_logs(submission))


def _dedupe(hits: list[Hit], ruleset: RuleSet) -> list[Hit]:
    """One hit per rule and code location, the most severe; a flagged update is not also legal (the
    rules' families in rules.json say which rules judge updates)."""
    best: dict[tuple, Hit] = {}
    for hit in hits:
        key = hit.origin()
        if key not in best or _OUTCOME_RANK[hit.outcome] < _OUTCOME_RANK[best[key].outcome]:
            best[key] = hit
    out = list(best.values())
    ttt, updates = ruleset.of_family(TTT), ruleset.of_family(TTT, VAL_TRAINING)
    flagged_lines = {(h.unit, h.line) for h in out if h.outcome == FLAG and h.rule in updates}
    out = [h for h in out if not (h.outcome in (LEGAL, REVIEW) and h.rule in ttt and (h.unit, h.line) in flagged_lines)]
    return sorted(out, key=lambda h: (_OUTCOME_RANK[h.outcome], h.rule, h.unit, h.line or 0))


NO_CODE = "no Python code that runs was found (no .py entry, or only empty files)"


def _has_code(run: list[Unit]) -> bool:
    """Some run file holds a statement (an empty train_gpt.py gives nothing to check, not a pass)."""
    return any(u.error or (u.tree is not None and any(not _docstring(s) for s in u.tree.body)) for u in run)


def _docstring(stmt) -> bool:
    return isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant)


def _verdict(hits: list[Hit], sources: SourceSet, skipped: dict[str, str], ruleset: RuleSet) -> tuple[str, list[str]]:
    flags = [h for h in hits if h.outcome == FLAG]
    if flags:
        return FLAGGED, [f"{h.rule}: {h.reason}" for h in flags]
    reasons = [f"{h.rule}: {h.reason}" for h in hits if h.outcome == REVIEW]
    run = sources.run_units()
    if not _has_code(run):
        reasons.append(NO_CODE)
    elif any(u.error for u in run):
        reasons += [f"{u.label} could not be parsed ({u.error})" for u in run if u.error]
    else:
        reasons += [f"{rule}: not checked ({why})" for rule, why in skipped.items()]
    if reasons:
        return NEEDS_REVIEW, reasons
    legal = [h for h in hits if h.outcome == LEGAL and h.rule in ruleset.of_family(TTT)]
    if legal:
        return CLEAN_WITH_LEGAL_TTT, [f"{h.rule}: {h.reason}" for h in legal]
    return CLEAN, []


def scanned_nothing(findings: Iterable[Finding]) -> bool:
    """True when no rule could be applied (no code that runs, or none that parses): such a scan is not
    clean, and `harness scan` and the CI gate never pass it."""
    return not any(f.check.startswith("compliance.") and f.check != "compliance.sources" and f.status != SKIP
                   for f in findings)
