"""Arguments several commands share: seeds, KEY=VALUE pairs for a script's environment, the dataset and
tokenizer a submission runs on, the significance policy."""

from __future__ import annotations

import re

from harness import rules
from harness.errors import UserError
from harness.reproduce.runner import RUNNER_OWNED_ENV

ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def parse_seeds(text: str) -> list[int]:
    parts = [part.strip() for part in text.split(",")]
    if not parts or any(not part.isdigit() for part in parts):
        raise UserError(f"--seeds must be comma-separated non-negative integers such as 1337,42,2025, got {text!r}")
    seeds = [int(part) for part in parts]
    if len(set(seeds)) != len(seeds):
        raise UserError(f"--seeds lists a seed twice: {text!r}")
    return seeds


def parse_env(pairs: list[str], reserved: tuple[str, ...] = RUNNER_OWNED_ENV) -> dict[str, str]:
    env = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not ENV_NAME.match(key):
            raise UserError(f"--env takes KEY=VALUE with KEY a variable name, got {pair!r}")
        if key in reserved:
            raise UserError(f"--env cannot set {key}: the runner sets it for each seed (use --seeds)")
        env[key] = value
    return env


def add_data_arguments(parser, dataset: str) -> None:
    """--data and --tokenizer of the commands that run a submission's script (harness.pipeline.data_for);
    `dataset` says what the command needs the dataset for."""
    parser.add_argument("--data", metavar="DIR", help=f"{dataset} (default: the bundled example dataset, tokenised with "
                        "the folder's own tokenizers/*.model when it brings one)")
    parser.add_argument("--tokenizer", metavar="MODEL",
                        help="SentencePiece model (default: the example's, or the folder's own; with --data, the one "
                             "its manifest.json names, else the one *.model in <data>/../../tokenizers/)")


def add_policy_argument(parser) -> None:
    parser.add_argument("--policy", default=rules.DEFAULT_SIGNIFICANCE_POLICY, choices=tuple(rules.SIGNIFICANCE_POLICIES),
                        help="significance policy: readme (0.005 nats at p < 0.01, R5.1) or frontier (one-sided "
                             "p < 0.25, no margin: the maintainers' practice from late April 2026, R5.2)")
