"""The table of check ids: every id a finding may carry, with its stage, a one-line title and the rule
it enforces (a section of ../shared/RULES.md, or "harness" for a check of the harness's own making).

A finding with an id not in this table is a bug (harness.findings refuses it). The compliance rows
come from harness/compliance/rules.json, one `compliance.<rule id>` per rule, so that adding a rule
there adds its row here. The README's list of checks is generated from this table
(tools/checks_table.py).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

HARNESS = "harness"  # the rule column of a check the harness makes for itself (integrity, what it could read)
RULES_JSON = Path(__file__).parent / "compliance" / "rules.json"
# In the order `harness check`, `harness data verify` and `harness verify` report them.
STAGES = ("files", "metadata", "code", "compliance", "logs", "claims", "budget", "data", "stats", "smoke", "reproduce",
          "eval", "judge", "probe", "ci")


@dataclass(frozen=True)
class Check:
    id: str  # stable; users search for it
    stage: str  # one of STAGES
    title: str  # what a pass means, in one line
    rule: str  # a RULES.md section such as "R1.1", or HARNESS


def _compliance_rows() -> list[Check]:
    """compliance.<id> for every rule of rules.json: its title (lower-cased like the other rows), and
    the first section the rule cites as the rule it enforces."""
    document = json.loads(RULES_JSON.read_text(encoding="utf-8"))
    return [Check(f"compliance.{row['id']}", "compliance", _sentence_case(row["title"]),
                  row["sections"][0] if row["sections"] else HARNESS) for row in document["rules"]]


def _sentence_case(title: str) -> str:
    """"No cache lookup" -> "no cache lookup"; an acronym in front ("SLOT ...") keeps its case."""
    return title[:1].lower() + title[1:] if title[1:2].islower() else title


_ROWS = [
    # harness check: the folder (harness/check/folder.py)
    Check("files.required", "files", "README.md, submission.json, a train log and train_gpt.py are present", "R6.1"),
    Check("files.refused", "files", "every file is a regular, readable file inside the folder, within the size limit",
          HARNESS),
    Check("metadata.parse", "metadata", "submission.json parses as a JSON object", "R6.1"),
    Check("metadata.schema", "metadata", "submission.json matches harness/schemas/submission.schema.json", "R6.2"),
    Check("metadata.unknown_keys", "metadata", "every key of submission.json is one the schema knows", "R6.2"),
    Check("metadata.readme_fields", "metadata", "submission.json states name, github_id and val_bpb", "R6.1"),
    Check("code.bytes", "code", "the counted code (train_gpt.py, or the script the logs show running, with the "
          "files it runs) is non-empty UTF-8 text under the cap on its own", "R1.2"),
    Check("code.syntax", "code", "the counted code and the files it runs parse (checked with ast, never run)", "R2.4"),
    Check("code.other_files", "code", "no code besides the counted code, whose bytes alone are counted", "R1.2"),
    Check("files.requirements", "files", "requirements.txt names plain packages, no URLs, paths or options", "R1.3"),
    Check("track", "files", "the track folder the submission lies in agrees with the track submission.json states", "R2.3"),
    # harness check: the compliance scan (harness/compliance/)
    Check("compliance.sources", "compliance", "the scanner found Python code that runs and could parse all of it",
          HARNESS),
    *_compliance_rows(),
    # harness check: claims against logs (harness/check/claims.py)
    Check("logs.parse", "logs", "every train log parses, each with a final metric", HARNESS),
    Check("claims.val_bpb", "claims", "the claimed val_bpb (and each seed's) matches the logs", "R3.1"),
    Check("claims.val_loss", "claims", "the claimed val_loss (and each seed's) matches the logs", "R3.1"),
    Check("claims.bytes_code", "claims", "the claimed and logged code bytes equal the counted code's size", "R1.2"),
    Check("claims.bytes_model", "claims", "the claimed compressed model bytes are logged by a run", "R1.1"),
    Check("claims.bytes_total", "claims", "the claimed total bytes (and each seed's) are logged and add up", "R1.1"),
    Check("claims.size_cap", "claims", "the claimed and logged artifact sizes are under the cap", "R1.1"),
    Check("budget.train_time", "budget", "the logged training time is within the budget", "R2.1"),
    Check("budget.eval_time", "budget", "the logged scored evaluation is within the budget", "R2.2"),
    Check("claims.hardware", "claims", "the logs and submission.json state the reference hardware", "R2.1"),
    Check("claims.provenance", "claims",
          "the script each log behind the claim embeds is the code file it resembles, unchanged", "R6.1"),
    Check("data.val_tokens", "data", "the logged validation token count is a split size seen in accepted records",
          "R3.4"),
    Check("claims.seeds", "claims", "distinct seeds, each with a log, as many as records usually show", "R5.1"),
    Check("stats.significance", "stats", "the logged scores beat the reference record under the named policy", "R5.1"),
    # harness data verify (harness/data/verify.py)
    Check("data.split.present", "data", "the dataset holds validation shards", "R3.1"),
    Check("data.manifest", "data", "the dataset's manifest is readable and schema-valid", HARNESS),
    Check("data.shard.header", "data", "every shard's header is sound and agrees with its file size", "R3.3"),
    Check("data.shards.listed", "data", "the shards on disk are exactly those the manifest lists", HARNESS),
    Check("data.shard.size", "data", "a shard's tokens and bytes are what the manifest says", HARNESS),
    Check("data.shard.sha256", "data", "a shard's sha256 is what the manifest says", HARNESS),
    Check("data.shards", "data", "every shard's header, size and sha256 match the manifest", HARNESS),
    Check("data.split.tokens", "data", "each split's token total agrees with the manifest's shard list", HARNESS),
    Check("data.split.bos", "data", "each split starts with BOS", "R3.3"),
    Check("data.split.docs", "data", "each split holds as many documents (BOS tokens) as the manifest says", "R3.1"),
    Check("data.tokenizer.vocab", "data", "every token id is below the tokenizer's vocabulary size", "R3.3"),
    Check("data.tokenizer.sha256", "data", "the tokenizer is the one the shards were made with", "R3.2"),
    Check("data.tokenizer.model", "data", "the tokenizer model's vocabulary is the manifest's", "R3.3"),
    # harness verify: smoke test, reproduction, re-evaluation, judgement (harness/judge/, harness/pipeline.py)
    Check("smoke.import", "smoke", "the script imports in the sandbox on CPU", "R2.4"),
    Check("smoke.model", "smoke", "the script's model builds from its own hyperparameters (parameters, layers, width, "
          "vocabulary, size estimate)", "R1.1"),
    Check("reproduce.setup", "reproduce", "what the runs ran on: hardware, data, tokenizer, shortened wall clock, "
          "attention shim", "R2.1"),
    Check("reproduce.run", "reproduce", "each seed's run completed in the sandbox", "R2.4"),
    Check("reproduce.artifact", "reproduce", "each run wrote an artifact the harness can find", "R1.3"),
    Check("reproduce.isolation", "reproduce", "the runs had no network", "R1.3"),
    Check("reproduce.limits", "reproduce", "the sandbox's limits held the runs: which were enforced, and how",
          "harness"),
    Check("eval.rescore", "eval", "the trusted sliding-window evaluator scored the artifact", "R3.1"),
    Check("eval.accounting", "eval", "the evaluator scored as many tokens and bytes as the harness counts in the split",
          "R3.2"),
    Check("eval.claim", "eval", "the trusted val_bpb agrees with the claimed one", "R3.1"),
    Check("judge.size", "judge", "rebuilt artifact bytes plus counted code bytes within the cap", "R1.1"),
    Check("judge.size_claim", "judge", "measured bytes agree with what the log and submission.json state", "R1.1"),
    Check("judge.train_time", "judge", "training time within the budget (measured, phases apart)", "R2.1"),
    Check("judge.eval_time", "judge", "evaluation time within the budget", "R2.2"),
    Check("judge.post_train", "judge", "work after the training loop (EMA, quantisation, compression) and where it "
          "counts", "R2.1"),
    Check("judge.own_score", "judge", "the script's own final score in the reproduced log against the claim, per seed",
          "R3.1"),
    Check("judge.trusted_score", "judge", "the trusted re-evaluation against the script's own number, with known "
          "reasons for differences named", "R4.3"),
    Check("judge.claim", "judge", "the claimed mean against the reproduced seeds' mean, within their spread", "R5.1"),
    Check("judge.significance", "judge", "reproduced seeds against the reference record under the named policy",
          "R5.1"),
    # harness probe: the black-box legality probe (harness/probe/, pipeline.probe)
    Check("probe.setup", "probe", "the probe stream drawn from a known distribution, its entropy, the shortened "
          "training; or why the probe cannot run", "R4.3"),
    Check("probe.run", "probe", "the script ran on the probe stream and printed final evaluation lines", "R2.4"),
    Check("probe.loss", "probe", "each final evaluation on the probe stream respects the entropy bound", "R4.3"),
    Check("probe.self_check", "probe", "the trusted evaluator's score of the model on the probe stream respects the "
          "bound", "R4.3.1"),
    # harness ci: what a pull request changes (harness/check/changes.py), before `check` of its folder
    Check("ci.layout", "ci", "every changed path lies inside a new folder of records/track_10min_16mb/ or "
          "records/track_non_record_16mb/", "R6.1"),
    Check("ci.existing_record", "ci", "no existing record is modified, renamed or deleted", "R6.1"),
    Check("ci.folders", "ci", "the pull request adds exactly one submission folder", "R6.1"),
    Check("ci.binary", "ci", "no model weights or data shards, and no binary file over the size limit", HARNESS),
    Check("ci.file_size", "ci", "every added or changed file is within the size limit", HARNESS),
    Check("ci.current_record", "ci", "the record the statistics compare against: the track's newest, or the one given",
          "R5.1"),
    Check("ci.checked", "ci", "the folder's code was found and scanned: a folder with nothing to check never passes",
          HARNESS),
]


def _table(rows: list[Check]) -> dict[str, Check]:
    table: dict[str, Check] = {}
    for row in rows:
        if row.id in table:
            raise ValueError(f"check id {row.id!r} is in the table twice")
        if row.stage not in STAGES:
            raise ValueError(f"check {row.id!r}: unknown stage {row.stage!r}; choose one of {', '.join(STAGES)}")
        table[row.id] = row
    return table


CHECKS: dict[str, Check] = _table(_ROWS)


def lookup(check_id: str) -> Check:
    """The table's row for `check_id`; KeyError naming this table for an id not in it."""
    try:
        return CHECKS[check_id]
    except KeyError:
        raise KeyError(f"unknown check id {check_id!r}: every check id must have a row in harness/checks.py") from None


def markdown_table() -> str:
    """The table as Markdown (id | stage | title | rule), in table order; the README's check list."""
    lines = ["| id | stage | title | rule |", "| --- | --- | --- | --- |"]
    for row in CHECKS.values():
        title = row.title.replace("|", "\\|")
        lines.append(f"| `{row.id}` | {row.stage} | {title} | {row.rule} |")
    return "\n".join(lines) + "\n"
