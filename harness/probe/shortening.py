"""How the probe cuts the script's training short, and whether it can.

The bound holds for any model, so the probe trains briefly: through the variables the baseline family
reads, ITERATIONS and MAX_WALLCLOCK_SECONDS (PROBE_TRAINING gives the values; the user's --env wins).
A model early in training predicts little beyond the unigram, so on the default stream a legal score
sits just above the bound and a cheat's gain shows. A script reads a variable when the compliance scan
saw it read by name (`os.environ.get("ITERATIONS", ...)`), or when it reads the environment under
computed names and defines a field of that name in lower case (`iterations: int = 20000` in a config
filled from `os.environ.get(field.name.upper())`, as reference_train does). A script that reads neither
cannot be shortened: the probe then skips, saying so, rather than run the full training.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field

from harness import rules

# Harness policy, not the challenge's: enough steps for a model to learn the unigram, not the language.
PROBE_TRAINING = dict(zip(rules.TRAINING_LENGTH_ENV, ("100", "60")))  # ITERATIONS, MAX_WALLCLOCK_SECONDS
COMPUTED = "<computed>"  # the compliance scan's name for an environment read under a computed name


@dataclass(frozen=True)
class Shortening:
    env: dict[str, str]  # what the run gets: the user's pairs plus the probe's training length
    reads: dict[str, str] = field(default_factory=dict)  # variable -> how the script reads it
    reason: str | None = None  # why the run cannot be shortened (the probe skips)

    def describe(self) -> str:
        return ", ".join(f"{name}={self.env[name]}" for name in PROBE_TRAINING if name in self.env)


def plan_shortening(env_reads: dict[str, list[str]], sources: list[str], user_env: dict[str, str]) -> Shortening:
    """The run's environment, from what the compliance scan saw the script read (`env_reads`: unit ->
    variable names) and the text of the code that runs (`sources`)."""
    constant = {name for names in env_reads.values() for name in names}
    fields = _defined_names(sources) if any(COMPUTED in names for names in env_reads.values()) else set()
    reads = {}
    for name in PROBE_TRAINING:
        if name in constant:
            reads[name] = f"os.environ {name!r}"
        elif name.lower() in fields:
            reads[name] = f"field {name.lower()!r}, read from the environment under a computed name"
    env = dict(user_env)
    if not reads:
        return Shortening(env, reason=f"the script reads none of {', '.join(PROBE_TRAINING)} from the environment, so "
                          "its training cannot be cut short; the probe does not run a full training")
    for name in reads:
        env.setdefault(name, PROBE_TRAINING[name])
    return Shortening(env, reads)


def _defined_names(sources: list[str]) -> set[str]:
    """Names given a value or an annotation anywhere in the code (class fields, assignments)."""
    names = set()
    for text in sources:
        try:
            tree = ast.parse(text)
        except (SyntaxError, ValueError):
            continue  # the scan reports unreadable code; a field there cannot be relied on
        for node in ast.walk(tree):
            if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                names.add(node.target.id)
            elif isinstance(node, ast.Assign):
                names.update(target.id for target in node.targets if isinstance(target, ast.Name))
    return names
