"""Judging the reproduction itself: did each seed's run complete, did it leave an artifact, did it run
without network."""

from __future__ import annotations

from harness import rules
from harness.findings import FAIL, PASS, SKIP, WARN, Finding, finding
from harness.judge.evidence import GIVEN, Hardware, SeedRun

FAILURE_TAIL_LINES = 5


def training_length(env: dict[str, str]) -> str | None:
    """The training-length variables the user set for the runs ("ITERATIONS=50, ..."), or None."""
    return ", ".join(f"{key}={env[key]}" for key in rules.TRAINING_LENGTH_ENV if key in env) or None


def setup_finding(hardware: Hardware, dataset: str, tokenizer: str, env: dict[str, str], attention_shim: bool,
                  artifact: str | None, own_tokenizer: str | None = None) -> Finding:
    """reproduce.setup: what the runs ran on, said once, so that a reader weighs the numbers rightly. A warn
    unless it was the reference hardware, with the script's own settings and its own attention.
    `own_tokenizer`: the folder's own model (relative path) when the data was built in it."""
    parts = [f"{hardware.nproc} process(es) on {hardware.name}"
             + ("" if hardware.reference else f" (not {rules.REFERENCE_HARDWARE}: times are projections)"),
             f"data {dataset} with tokenizer {tokenizer}"
             + (f" (the folder's own {own_tokenizer}: the example corpus tokenised with it)" if own_tokenizer else "")]
    set_length = training_length(env)
    if set_length:
        parts.append("training length set: " + set_length)
    if attention_shim:
        parts.append("FlashAttention replaced by the SDPA shim (speeds are not representative)")
    if artifact is not None:
        parts.append(f"no training: the given artifact {artifact}")
    status = PASS if hardware.reference and not set_length and not attention_shim else WARN
    return finding("reproduce.setup", status, "; ".join(parts), hardware=hardware.name, nproc=hardware.nproc,
                   dataset=dataset, tokenizer=tokenizer, env=dict(env), attention_shim=attention_shim,
                   **({"own_tokenizer": own_tokenizer} if own_tokenizer else {}))


def run_findings(runs: list[SeedRun]) -> list[Finding]:
    """reproduce.run per seed (fail with the last lines printed), reproduce.artifact per completed seed."""
    found = []
    for run in runs:
        if run.status == GIVEN:
            found.append(finding("reproduce.run", SKIP, f"not reproduced: the artifact {run.artifact} was given "
                                 "(--skip-train), so nothing shows the script makes it", file=run.artifact))
            continue
        if run.ok:
            found.append(finding("reproduce.run", PASS, f"seed {run.seed}: the script ran to its end in the sandbox",
                                 file=run.log, seed=run.seed, wall_s=run.wall_s))
            found.append(finding("reproduce.artifact", PASS, f"seed {run.seed}: artifact {run.artifact} "
                                 f"({run.artifact_bytes:,} bytes)", file=run.artifact, seed=run.seed,
                                 artifact_bytes=run.artifact_bytes))
            continue
        tail = " | ".join(line.strip() for line in run.tail[-FAILURE_TAIL_LINES:] if line.strip())
        found.append(finding("reproduce.run", FAIL, f"seed {run.seed} {run.status}: {run.error}; "
                             f"last lines: {tail or '(none)'}", file=run.log, seed=run.seed, wall_s=run.wall_s))
    return found


def limits_finding(enforced: dict[str, str], missing: dict[str, str]) -> Finding:
    """reproduce.limits: what the sandbox bounded in the runs (limit -> how) and what it could not (limit ->
    why), as the sandbox reported them. A limit missing in any run warns: a hostile script was not held."""
    values = dict(enforced=enforced, not_enforced=missing)
    if not missing:
        return finding("reproduce.limits", PASS, f"every run was held by all {len(enforced)} sandbox limits "
                       f"({', '.join(enforced)})", **values)
    return finding("reproduce.limits", WARN, "not enforced in the runs: " + "; ".join(
        f"{name} ({why})" for name, why in missing.items()), **values)


def isolation_finding(isolated: list[bool]) -> Finding:
    """reproduce.isolation: whether every run had no network (a fresh network namespace)."""
    if isolated and all(isolated):
        return finding("reproduce.isolation", PASS, "every run ran in a fresh network namespace (no network)")
    return finding("reproduce.isolation", WARN,
                   f"{sum(1 for i in isolated if not i)} of {len(isolated)} runs had the network: this OS refused a "
                   "network namespace (unshare -rn), so a download at run time would not have been stopped")
