"""Write a record folder in the challenge's format from the per-seed results of `harness run-seeds`.

The folder holds what a pull request to records/ holds (R6.1): README.md (what ran, the scores, how to
reproduce it), submission.json (the mean score and per-seed results, valid against
harness/schemas/submission.schema.json), one log per seed named train_seed<SEED>.log (the script's own log,
which embeds its source), and the train_gpt.py that ran. Artifacts are not copied: the folder stays
small enough to commit.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from harness import rules
from harness.data.shards import MANIFEST_NAME, read_manifest
from harness.errors import UserError
from harness.reproduce.runner import RunPlan, SeedResult, spread
from harness.schemas import validation_errors

# The runner sets these for every seed; the README lists the user's own settings separately.
RUNNER_SET_ENV = ("SEED", "RUN_ID", "DATA_PATH", "TOKENIZER_PATH", "VOCAB_SIZE")
# Records in the challenge write the track without the folder prefix ("non_record_16mb").
TRACK = rules.NON_RECORD_TRACK.removeprefix("track_")


@dataclass
class RecordInfo:
    """What the results alone do not say: names, the command that produced them, the source."""

    name: str
    command: str  # the `harness run-seeds ...` line that produced the record
    rerun: str  # the line that runs the record's own train_gpt.py again (same seeds, data, settings)
    source: str  # what train_gpt.py is, e.g. "the reference trainer (reference_train/train_gpt.py)"
    author: str = "pgolf-harness"
    github_id: str = ""
    blurb: str = ""


def log_name(seed: int) -> str:
    return f"train_seed{seed}.log"


def write_record(folder: Path, plan: RunPlan, results: list[SeedResult], info: RecordInfo) -> Path:
    """Create `folder` (which must not exist yet) from completed results; return its path."""
    if not results or not all(result.ok for result in results):
        raise ValueError("a record is written from completed seeds only")
    if folder.exists():
        raise UserError("already exists; remove it or choose another --record name", folder)
    metadata = submission_json(plan, results, info)
    errors = validation_errors(metadata, "submission")
    if errors:
        raise ValueError(f"submission.json would not validate: {errors}")
    folder.mkdir(parents=True)
    shutil.copy2(plan.script, folder / rules.COUNTED_CODE_FILE)
    for result in results:
        shutil.copyfile(plan.out_dir / (result.log or result.console_log), folder / log_name(result.seed))
    (folder / "submission.json").write_text(json.dumps(metadata, indent=2) + "\n", encoding="utf-8")
    (folder / "README.md").write_text(readme(plan, results, info, metadata, _shown(folder)), encoding="utf-8")
    return folder


def submission_json(plan: RunPlan, results: list[SeedResult], info: RecordInfo) -> dict:
    bpb = spread([r.val_bpb for r in results])
    loss = spread([r.val_loss for r in results])
    totals = [r.bytes_total for r in results if r.bytes_total is not None]
    metadata = {
        "name": info.name,
        "author": info.author,
        "github_id": info.github_id,
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d"),
        "track": TRACK,
        "blurb": info.blurb or default_blurb(plan, results),
        "hardware": results[0].hardware,
        "pytorch_version": _torch_version(),
        "val_bpb": _round(bpb.mean),
        "val_loss": _round(loss.mean),
        "val_bpb_std": _round(bpb.std),
        "val_loss_std": _round(loss.std),
        "val_bpb_method": results[0].metric or "",
        "bytes_total": max(totals) if totals else None,
        "bytes_code": plan.script.stat().st_size,
        "seeds": [r.seed for r in results],
        "seed_results": {str(r.seed): seed_entry(r) for r in results},
    }
    return {key: value for key, value in metadata.items() if value is not None}


def seed_entry(result: SeedResult) -> dict:
    entry = {
        "val_bpb": result.val_bpb,
        "val_loss": result.val_loss,
        "bytes_total": result.bytes_total,
        "steps": result.steps,
        "train_time_ms": result.train_time_ms,
    }
    return {key: value for key, value in entry.items() if value is not None}


def default_blurb(plan: RunPlan, results: list[SeedResult]) -> str:
    changed = len(user_env(results[0]))
    settings = f", {changed} setting{'s' if changed != 1 else ''} changed from its defaults" if changed else ""
    return (f"{len(results)} seeds of train_gpt.py on {plan.dataset_dir.name} ({results[0].hardware}){settings}; "
            "produced by `harness run-seeds`.")


def user_env(result: SeedResult) -> dict[str, str]:
    return {key: value for key, value in result.env.items() if key not in RUNNER_SET_ENV}


def readme(plan: RunPlan, results: list[SeedResult], info: RecordInfo, metadata: dict, folder: str) -> str:
    first = results[0]
    lines = [
        f"# {info.name}", "",
        metadata["blurb"], "",
        f"Produced by `harness run-seeds` on {metadata['date']}: {len(results)} seeds of {info.source}, "
        f"on {first.hardware} (PyTorch {metadata['pytorch_version']}), with {plan.nproc} process"
        f"{'es' if plan.nproc > 1 else ''}, on the dataset `{plan.dataset_dir.name}` with the tokenizer "
        f"`{plan.tokenizer_path.name}`. The score of each seed is its log's `{first.metric}` line.", "",
        "## Results", "",
        "| seed | val_bpb | val_loss | steps | train time | wall time | bytes_total |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in results:
        lines.append(f"| {r.seed} | {r.val_bpb:.8f} | {r.val_loss:.8f} | {_or_dash(r.steps)} | "
                     f"{_seconds(r.train_time_ms)} | {r.wall_s:.0f} s | {_or_dash(r.bytes_total)} |")
    std_bpb = f" ± {metadata['val_bpb_std']:.8f}" if "val_bpb_std" in metadata else ""
    std_loss = f" ± {metadata['val_loss_std']:.8f}" if "val_loss_std" in metadata else ""
    lines += [f"| mean ± std | {metadata['val_bpb']:.8f}{std_bpb} | {metadata['val_loss']:.8f}{std_loss} | | | | |", ""]
    lines += _configuration(first)
    lines += _data_section(plan)
    lines += [
        "## Reproduce", "",
        "From the repository root, after `make setup` (or `pip install -e .`), this runs the folder's own "
        "`train_gpt.py` again with the same seeds, data and settings, then checks the folder:", "",
        "```bash", info.rerun, f"harness check {folder}", "```", "",
        "The runner trains each seed in its own work dir under `runs/`, with the data linked where the "
        "script expects it, and prints the table above again (wall time: start to finish of a seed, "
        "evaluation included). Scores differ slightly on other hardware and library versions "
        "(floating-point order of operations). This folder was written by:", "",
        "```bash", info.command, "```", "",
        "## Files", "",
        f"- `train_gpt.py`: the script that ran ({metadata['bytes_code']} bytes).",
        "- `train_seed<SEED>.log`: each seed's own log (`logs/<RUN_ID>.txt`), which begins with the script's source.",
        "- `submission.json`: the mean score and per-seed results (`seed_results`).",
        "",
        "The compressed models (`final_model*.ptz`) are not kept here; the reproduction command writes them "
        "again under `runs/`.", "",
    ]
    return "\n".join(lines)


def _data_section(plan: RunPlan) -> list[str]:
    """Which data, exactly: the manifest's shard hashes (the example corpus depends on the Python that built it)."""
    lines = ["## Data", "", f"Dataset `{plan.dataset_dir.name}`, tokenizer `{plan.tokenizer_path.name}`."]
    if not (plan.dataset_dir / MANIFEST_NAME).is_file():
        return lines + ["It has no manifest.json, so its shards are not identified further.", ""]
    manifest = read_manifest(plan.dataset_dir)
    build = manifest.get("build", {})
    if build.get("tool"):
        versions = ", ".join(f"{label} {build[key]}" for key, label in (("harness_version", "harness"),
                                                                           ("python", "Python")) if key in build)
        lines[-1] += (f" Built by `{build['tool']}`" + (f" ({versions})" if versions else "")
                      + "; the example corpus comes from the building Python's own text, so another version can "
                      "yield other shards: compare the hashes below before comparing scores.")
    lines += ["", "| file | split | tokens | sha256 |", "| --- | --- | ---: | --- |"]
    tokenizer = manifest["tokenizer"]
    lines.append(f"| `{tokenizer['file']}` | tokenizer | | `{tokenizer['sha256']}` |")
    lines += [f"| `{shard['name']}` | {shard['split']} | {shard['tokens']} | `{shard['sha256']}` |"
              for shard in manifest["shards"]]
    return lines + [""]


def _configuration(result: SeedResult) -> list[str]:
    own = user_env(result)
    lines = ["## Configuration", "",
             "The runner sets `SEED`, `RUN_ID`, `DATA_PATH`, `TOKENIZER_PATH` and `VOCAB_SIZE` "
             f"(`VOCAB_SIZE={result.env.get('VOCAB_SIZE')}`) for every seed"]
    if not own:
        return lines[:-1] + [lines[-1] + "; nothing else was set, so every other setting is the script's default.", ""]
    lines[-1] += "; these were set on top (everything else is the script's default):"
    lines += ["", "| variable | value |", "| --- | --- |"]
    lines += [f"| `{key}` | `{value}` |" for key, value in sorted(own.items())]
    return lines + [""]


def _shown(folder: Path) -> str:
    """The folder as a user would type it: relative to the working directory when inside it."""
    try:
        return str(folder.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(folder)


def _round(value: float | None) -> float | None:
    """Eight decimals, as the logs' `_exact` lines and the challenge's records print scores."""
    return None if value is None else round(value, 8)


def _or_dash(value) -> str:
    return "–" if value is None else str(value)


def _seconds(milliseconds: float | None) -> str:
    return "–" if milliseconds is None else f"{milliseconds / 1000:.1f} s"


def _torch_version() -> str:
    try:
        import torch
    except ImportError:
        return "not installed"
    return torch.__version__
