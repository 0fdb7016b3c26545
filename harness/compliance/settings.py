"""Settings a submission reads from environment variables, with their defaults, and what its logs say
about them.

Records read hyperparameters as `x = bool(int(os.environ.get("X_ENABLED", "0")))`, in a class body, at
module level or in a function. A code path guarded by such a setting whose default is off (0, "",
false) runs only when the official run sets the variable. The code alone cannot tell whether the run
enabled it; the logs behind the claimed score often can (`logged_state`): a hyperparameter dump that
states it (`temp_scaling=True`, `  temp_scaling: 1`), or a line the path itself prints, which starts
with the setting's name (`temp_scaling optimal_T:0.90`).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

from harness.compliance.names import canonical
from harness.compliance.sources import Unit
from harness.errors import UserError
from harness.submission.logs import parse_submission_logs

ENV_GETTERS = frozenset({"os.environ.get", "os.getenv"})
OFF = frozenset({"0", "", "false", "no", "off", "none"})


@dataclass(frozen=True)
class Setting:
    name: str  # the attribute or variable holding it, e.g. "slot_enabled"
    env: str  # the environment variable, e.g. "SLOT_ENABLED"
    default: object  # the literal default (None when there is none)

    @property
    def off_by_default(self) -> bool:
        return self.default is None or self.default is False or (
            isinstance(self.default, (int, float)) and self.default == 0) or (
            isinstance(self.default, str) and self.default.strip().lower() in OFF)


def env_settings(units: list[Unit]) -> dict[str, Setting]:
    """Every `name = ...os.environ.get("ENV", default)...` in the units, also through a local helper
    such as `def _e(k, d, t): return t(os.environ.get(k, d))` called as `_e("ENV", 0, bool)`."""
    settings: dict[str, Setting] = {}
    for unit in units:
        if unit.tree is None:
            continue
        aliases = unit.aliases()
        getters = _getter_functions(unit, aliases)
        for node in unit.nodes():
            if not isinstance(node, (ast.Assign, ast.AnnAssign)) or node.value is None:
                continue
            found = _read(node.value, aliases, getters)
            if found is None:
                continue
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                name = target.id if isinstance(target, ast.Name) else target.attr if isinstance(target, ast.Attribute) else None
                if name:
                    settings.setdefault(name, Setting(name=name, env=found[0], default=found[1]))
    return settings


def _read(value: ast.expr, aliases: dict[str, str], getters: set[str]) -> tuple[str, object] | None:
    for call in ast.walk(value):
        if not (isinstance(call, ast.Call) and call.args and isinstance(call.args[0], ast.Constant)
                and isinstance(call.args[0].value, str)):
            continue
        name = canonical(call.func, aliases)
        if name in ENV_GETTERS or name in getters:
            default = call.args[1].value if len(call.args) > 1 and isinstance(call.args[1], ast.Constant) else None
            return call.args[0].value, default
    return None


def _getter_functions(unit: Unit, aliases: dict[str, str]) -> set[str]:
    """Functions that read the environment variable named by their first parameter."""
    found = set()
    for node in unit.nodes():
        if isinstance(node, ast.FunctionDef) and node.args.args and len(node.body) <= 3:  # small helpers only
            first = node.args.args[0].arg
            for sub in (n for b in node.body for n in ast.walk(b)):
                if (isinstance(sub, ast.Call) and canonical(sub.func, aliases) in ENV_GETTERS and sub.args
                        and isinstance(sub.args[0], ast.Name) and sub.args[0].id == first):
                    found.add(node.name)
                    break
    return found


@dataclass(frozen=True)
class LoggedState:
    """What a log says about a setting: on or off, and the line that says so."""

    enabled: bool
    log: str  # the log file, relative to the folder
    line: int
    text: str  # the line (or the key and value) as the log states it


def logged_state(setting: Setting, submission, log_names: list[str]) -> LoggedState | None:
    """The first of these logs that states the setting on, else the first that states it off; None when
    no log says. A stated value counts before a line the path prints."""
    logs = parse_submission_logs(submission)  # the folder's logs, parsed once per load
    keys = (setting.name.lower(), setting.env.lower(), setting.env, setting.name)
    stated = []
    for name in log_names:
        log = logs[name]
        key = next((k for k in keys if k in log.settings), None)
        if key is not None:
            value = log.settings[key]
            stated.append(LoggedState(value.strip().strip("'\"").lower() not in OFF, name, log.setting_lines[key],
                                      f"{key}={value}"))
    on = [state for state in stated if state.enabled]
    if on or stated:
        return (on or stated)[0]
    for name in log_names:
        found = _printed_by_path(setting, submission, name)
        if found is not None:
            return found
    return None


def _printed_by_path(setting: Setting, submission, log_name: str) -> LoggedState | None:
    """A log line that starts with the setting's name and is not a `name=...`/`name: ...` statement:
    output of the guarded path itself."""
    try:
        text = submission.read_text(log_name)
    except UserError:
        return None
    prefix = setting.name.lower()
    for number, line in enumerate(text.splitlines(), start=1):
        lowered = line.strip().lower()
        if lowered.startswith(prefix + " ") and not lowered[len(prefix):].lstrip().startswith(("=", ":")):
            return LoggedState(True, log_name, number, line.strip()[:160])
    return None
