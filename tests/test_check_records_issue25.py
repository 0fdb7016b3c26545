"""`harness check` on the shapes real records take (issue #25): each class of false failure the challenge's
records showed, and each miss, on a small folder the test writes (no challenge file is copied here)."""

from __future__ import annotations

import json
from pathlib import Path

from harness import rules
from harness.pipeline import check
from harness.submission.logs import SEPARATOR

CODE = 'import os\n\n\ndef main():\n    lr = float(os.environ.get("MATRIX_LR", 0.04))\n    print(lr)\n\n\nmain()\n'
GDN = 'import os\nimport math\n\n\ndef main():\n    mixer = "gated_delta"\n    print(math.tau, mixer)\n\n\nmain()\n'
MODEL = 15_000_000


def make_log(seed: int, bpb: float, loss: float, *, script: str | None = None, settings: str = "",
             code: int | None = None, model: int = MODEL, final: bool = True, last_val: tuple[float, float] | None = None,
             mode: str = "final_int8_zlib_roundtrip") -> str:
    head = (script.rstrip("\n") + "\n" + SEPARATOR + "\n") if script is not None else ""
    code = len((script or CODE).encode()) if code is None else code
    text = (f"{settings}world_size:8 grad_accum_steps:1\nseed:{seed}\n"
            "step:1000/20000 train_loss:2.5000 train_time:590000ms step_avg:590.00ms\n")
    if last_val is not None:
        text += f"step:1000/20000 val_loss:{last_val[1]:.4f} val_bpb:{last_val[0]:.4f} train_time:590000ms step_avg:590.00ms\n"
    text += "stopping_early: wallclock_cap train_time:590000ms step:1000/20000\n"
    if final:
        text += (f"Serialized model int8+zlib: {model} bytes\nCode size: {code} bytes\n"
                 f"Total submission size int8+zlib: {model + code} bytes\n"
                 f"{mode} val_loss:{loss:.4f} val_bpb:{bpb:.4f} eval_time:1000ms\n"
                 f"{mode}_exact val_loss:{loss:.8f} val_bpb:{bpb:.8f}\n")
    return head + text


def write(root: Path, files: dict[str, str], metadata: dict | None = None, readme: str = "# test\n") -> Path:
    folder = root / "records" / rules.NON_RECORD_TRACK / "2026-05-01_Test"
    folder.mkdir(parents=True)
    (folder / "README.md").write_text(readme)
    if metadata is not None:
        (folder / "submission.json").write_text(json.dumps({"name": "t", "github_id": "t", **metadata}))
    for name, text in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
    return folder


def found(folder: Path) -> dict[str, list]:
    result: dict[str, list] = {}
    for item in check(str(folder)).findings:
        result.setdefault(item.check, []).append(item)
    return result


def statuses(findings: dict[str, list], check_id: str) -> list[str]:
    return [f.status for f in findings.get(check_id, [])]


def messages(findings: dict[str, list], check_id: str) -> str:
    return " | ".join(f.message for f in findings.get(check_id, []))


# -- provenance -------------------------------------------------------------------------------------------

def test_each_log_is_compared_with_the_code_file_it_embeds(tmp_path: Path) -> None:
    """The logs run train_gpt_gdn.py beside a baseline train_gpt.py: compared with (and counted as) that file."""
    logs = {f"seed{s}.log": make_log(s, b, 2.0, script=GDN) for s, b in ((1, 1.40), (2, 1.42))}
    folder = write(tmp_path, {"train_gpt.py": CODE, "train_gpt_gdn.py": GDN, **logs},
                   {"val_bpb": 1.41, "bytes_code": len(GDN), "bytes_total": MODEL + len(GDN)})
    result = found(folder)
    assert statuses(result, "claims.provenance") == ["pass"] and "exactly train_gpt_gdn.py" in messages(result, "claims.provenance")
    assert statuses(result, "claims.bytes_code") == ["pass"]
    assert statuses(result, "code.bytes") == ["warn"] and "train_gpt_gdn.py" in messages(result, "code.bytes")
    assert "train_gpt.py" in str(result["code.other_files"][0].evidence)


def test_a_copy_differing_only_in_whitespace_warns(tmp_path: Path) -> None:
    reindented = CODE.replace('    print(lr)', '   print(lr) ')
    logs = {"seed1.log": make_log(1, 1.40, 2.0, script=reindented), "seed2.log": make_log(2, 1.42, 2.0, script=CODE)}
    result = found(write(tmp_path, {"train_gpt.py": CODE, **logs}, {"val_bpb": 1.41}))
    assert sorted(statuses(result, "claims.provenance")) == ["pass", "warn"]
    assert "only whitespace differing" in messages(result, "claims.provenance")


def test_a_copy_whose_head_was_overwritten_by_output_is_a_damaged_copy(tmp_path: Path) -> None:
    script = CODE + "".join(f"\n\ndef helper_{i}(x):\n    return x * {i} + 1\n" for i in range(12))
    lines = script.splitlines()
    output = ["val_bpb:enabled tokenizer_kind=sentencepiece", "model_params:17424332", "world_size:1 grad_accum_steps:8",
              "warmup_step:1/20", "step:0/20000 val_loss:6.9353 val_bpb:4.1074 train_time:0ms step_avg:0.03ms"]
    damaged = "\n".join(lines[:2] + ["import coGDN core: chunk_gated_delta_rule"] + output + lines[5:])
    log = "Running GDN hybrid with:\n  SEED=42\n" + make_log(42, 1.40, 2.0, script=damaged)
    result = found(write(tmp_path, {"train_gpt.py": script, "train.log": log}, {"val_bpb": 1.40}))
    [item] = result["claims.provenance"]
    assert item.status == "warn" and "damaged copy" in item.message and "run's own output" in item.message


def test_ablation_logs_are_not_judged_as_if_they_backed_the_claim(tmp_path: Path) -> None:
    ablation = CODE.replace("print(lr)", "os.system('rm -rf data')")
    logs = {f"seed{s}.log": make_log(s, b, 2.0, script=CODE) for s, b in ((1, 1.40), (2, 1.42), (3, 1.41))}
    logs["ablation_no_warmdown.log"] = make_log(4, 1.55, 2.3, script=ablation)
    result = found(write(tmp_path / "claimed", {"train_gpt.py": CODE, **logs}, {"val_bpb": 1.41, "seeds": [1, 2, 3]}))
    assert statuses(result, "claims.provenance") == ["pass"]  # the claim rests on the three seeds
    result = found(write(tmp_path / "unclaimed", {"train_gpt.py": CODE, **logs}))  # no submission.json: no claim
    assert statuses(result, "claims.provenance") == ["pass", "warn"]
    assert "ablation_no_warmdown.log" in messages(result, "claims.provenance")
    assert "no claim rests on it" in messages(result, "claims.provenance")


def test_a_file_edited_after_the_run_without_changing_what_ran_warns(tmp_path: Path) -> None:
    """Severity: the claim matches its log; the log's copy has an unread setting and another default."""
    ran = CODE.replace('    lr =', '    resume_from = os.environ.get("RESUME_FROM", "")\n    lr =').replace("0.04", "0.02")
    logs = {"train.log": make_log(1, 1.40, 2.0, script=ran, settings="matrix_lr:0.04 scalar_lr:0.04\n")}
    result = found(write(tmp_path, {"train_gpt.py": CODE, **logs},
                         {"val_bpb": 1.40, "bytes_code": len(ran.rstrip("\n").encode())}))
    [item] = result["claims.provenance"]
    assert item.status == "warn" and "edited after the run, without changing what ran" in item.message
    assert "MATRIX_LR" in item.message and "resume_from" in item.message
    [code] = result["claims.bytes_code"]  # the claim is the size of the copy that ran
    assert code.status == "warn" and "edited after the run" in code.message


def test_a_changed_default_the_log_contradicts_still_fails(tmp_path: Path) -> None:
    ran = CODE.replace("0.04", "0.02")
    logs = {"train.log": make_log(1, 1.40, 2.0, script=ran, settings="matrix_lr:0.02 scalar_lr:0.02\n")}
    result = found(write(tmp_path, {"train_gpt.py": CODE, **logs}, {"val_bpb": 1.40}))
    assert statuses(result, "claims.provenance") == ["fail"]


# -- the claimed score ------------------------------------------------------------------------------------

def test_a_claim_that_is_the_mean_of_one_configurations_logs_matches(tmp_path: Path) -> None:
    short, long = "train_seq_len:1024 train_batch_tokens:393216\n", "train_seq_len:32768 train_batch_tokens:524288\n"
    logs = {"short_s1337.log": make_log(1337, 1.38, 2.30, settings=short),
            "short_s1341.log": make_log(1341, 1.40, 2.35, settings=short),
            "long_s1342.log": make_log(1342, 1.4702, 2.4825, settings=long),
            "long_s42.log": make_log(42, 1.4716, 2.4847, settings=long)}
    result = found(write(tmp_path, {"train_gpt.py": CODE, **logs}, {"val_bpb": 1.4709, "val_loss": 2.4836}))
    assert statuses(result, "claims.val_bpb") == ["pass"] and statuses(result, "claims.val_loss") == ["pass"]
    assert "a subset of the logs, one configuration: long_s1342.log, long_s42.log" in messages(result, "claims.val_bpb")


def test_a_claim_equal_to_the_mean_of_some_seeds_still_fails(tmp_path: Path) -> None:
    """Two of three seeds average to the claimed val_loss by chance: arbitrary subsets are not tried, and
    once the claimed val_bpb fixed the runs, the val_loss is their mean too (two seeds logged other code
    bytes, so they are a configuration of their own)."""
    seeds = ((1337, 1.0830, 2.79749, None), (42, 1.0836, 2.79910, 900), (3141, 1.0840, 2.80002, 900))
    logs = {f"seed{s}.log": make_log(s, bpb, loss, code=code) for s, bpb, loss, code in seeds}
    result = found(write(tmp_path / "one", {"train_gpt.py": CODE, **logs}, {"val_loss": 2.7995}))
    assert statuses(result, "claims.val_loss") == ["pass"]  # the mean of the 900-byte configuration
    result = found(write(tmp_path / "two", {"train_gpt.py": CODE, **logs}, {"val_bpb": 1.08353, "val_loss": 2.7995}))
    assert statuses(result, "claims.val_bpb") == ["pass"] and statuses(result, "claims.val_loss") == ["fail"]
    logs["seed42.log"] = make_log(42, 1.0836, 2.79910)  # one configuration again
    result = found(write(tmp_path / "three", {"train_gpt.py": CODE, **logs}, {"val_loss": 2.7995}))
    assert statuses(result, "claims.val_loss") == ["fail"]


def test_a_mislabelled_seed_is_named_with_both_numbers(tmp_path: Path) -> None:
    logs = {"s42.log": make_log(42, 1.4716, 2.4847), "s1342.log": make_log(1342, 1.4703, 2.4825),
            "s1341.log": make_log(1341, 1.3970, 2.3587)}
    per_seed = {"1341": {"val_bpb": 1.4703}, "42": {"val_bpb": 1.4716}}
    result = found(write(tmp_path, {"train_gpt.py": CODE, **logs},
                         {"val_bpb": 1.47095, "seeds": [1341, 42], "seed_results": per_seed}))
    [per] = [f for f in result["claims.val_bpb"] if "per-seed" in f.message]
    assert per.status == "warn" and "mislabelled" in per.message
    assert "seed 1341's 1.4703 matches s1342.log" in per.message and "logs seed 1342" in per.message


def test_a_claim_that_is_the_best_seed_while_the_readme_gives_the_mean_fails(tmp_path: Path) -> None:
    logs = {f"seed{s}.log": make_log(s, b, 2.0) for s, b in ((1337, 1.1250), (42, 1.1262), (2025, 1.1247))}
    readme = "# t\n\n| seed | bpb |\n\nMean val_bpb: **1.1253**. Submitted: seed 2025 (best).\n"
    result = found(write(tmp_path, {"train_gpt.py": CODE, **logs}, {"val_bpb": 1.1247}, readme=readme))
    [item] = result["claims.val_bpb"]
    assert item.status == "fail" and "best of 3 seeds" in item.message and "README.md:5" in item.message


def test_a_pre_quantisation_in_training_claim_says_so(tmp_path: Path) -> None:
    log = make_log(1337, 0, 0, final=False, last_val=(1.1898, 2.0089))
    result = found(write(tmp_path, {"train_gpt.py": CODE, "train.log": log}, {"val_bpb": 1.1898, "val_loss": 2.0089}))
    [item] = result["claims.val_bpb"]
    assert item.status == "fail" and "in-training validation at step 1000" in item.message
    assert "no evaluation after quantisation" in item.message


def test_claims_under_alias_keys_are_read(tmp_path: Path) -> None:
    logs = {f"seed{s}.log": make_log(s, b, 1.9, last_val=(1.2196, 2.0592)) for s, b in ((1, 1.17), (2, 1.18))}
    metadata = {"mean_val_bpb": 1.175, "code_bytes": len(CODE) + 4800, "artifact_bytes": MODEL + len(CODE),
                "pre_quant_val_bpb": 1.2196, "sliding_val_bpb": 1.0999}
    result = found(write(tmp_path, {"train_gpt.py": CODE, **logs}, metadata))
    assert "claimed mean_val_bpb 1.175 matches" in messages(result, "claims.val_bpb")
    assert "sliding_val_bpb 1.0999" in messages(result, "claims.val_bpb")  # stated beside the score, in no log
    assert statuses(result, "claims.bytes_code") == ["fail"] and "claimed code_bytes" in messages(result, "claims.bytes_code")
    assert statuses(result, "claims.bytes_total") == ["pass"]


def test_a_rounded_size_in_submission_json_warns(tmp_path: Path) -> None:
    logs = {"train.log": make_log(1, 1.40, 2.0, model=15_965_000 - len(CODE) + 978)}
    result = found(write(tmp_path, {"train_gpt.py": CODE, **logs}, {"val_bpb": 1.40, "bytes_total": 15_900_000}))
    [item] = result["claims.bytes_total"]
    assert item.status == "warn" and "round figure" in item.message


# -- the counted code -------------------------------------------------------------------------------------

def test_a_missing_train_gpt_py_is_the_script_the_logs_embed(tmp_path: Path) -> None:
    logs = {"train.log": make_log(1, 1.40, 2.0, script=GDN)}
    result = found(write(tmp_path, {"train_gpt_v5.py": GDN, **logs}, {"val_bpb": 1.40, "bytes_code": len(GDN)}))
    assert statuses(result, "files.required")[-1] == "warn" and "train_gpt_v5.py" in messages(result, "files.required")
    assert statuses(result, "code.bytes") == ["warn"] and statuses(result, "claims.bytes_code") == ["pass"]


def test_a_missing_train_gpt_py_is_the_script_the_readme_runs(tmp_path: Path) -> None:
    readme = "# t\n\n```bash\ntorchrun --standalone --nproc_per_node=8 train_mamba.py\n```\n"
    result = found(write(tmp_path, {"train_mamba.py": GDN, "helper.py": CODE, "train.log": make_log(1, 1.4, 2.0)},
                         {"val_bpb": 1.40}, readme=readme))
    assert "train_mamba.py, the script the README runs" in messages(result, "files.required")
    assert "helper.py" in str(result["code.other_files"][0].evidence)


def test_an_empty_or_comment_only_train_gpt_py_fails(tmp_path: Path) -> None:
    for name, text in (("empty", ""), ("comments", "# nothing here\n\n   \n")):
        result = found(write(tmp_path / name, {"train_gpt.py": text, "train.log": make_log(1, 1.4, 2.0)}, {"val_bpb": 1.4}))
        assert statuses(result, "files.required")[-1] == "fail" and statuses(result, "code.bytes") == ["fail"]
        assert statuses(result, "code.syntax") == ["skip"]


def test_what_a_tiny_train_gpt_py_runs_is_counted(tmp_path: Path) -> None:
    wrapper = 'exec(open(__file__.replace("train_gpt.py","train_gpt_decode.py")).read())\n'
    decoded = "import helpers\n" + CODE
    helpers = "def scale(x):\n    return 2 * x\n" + "# padding\n" * 40
    total = len(wrapper) + len(decoded) + len(helpers)
    model = rules.ARTIFACT_CAP_BYTES - total + 1  # over the cap only when what runs is counted
    logs = {"train.log": make_log(1, 1.40, 2.0, model=model, code=len(decoded))}
    result = found(write(tmp_path, {"train_gpt.py": wrapper, "train_gpt_decode.py": decoded, "helpers.py": helpers,
                                    **logs}, {"val_bpb": 1.40}))
    [item] = result["code.bytes"]
    assert item.status == "warn" and f"{total:,} bytes counted together" in item.message
    assert "train_gpt_decode.py" in item.message and "helpers.py" in item.message and "exec" in item.message
    assert statuses(result, "claims.size_cap") == ["warn"] and f"({total:,} bytes)" in messages(result, "claims.size_cap")
    assert statuses(result, "code.other_files") == ["pass"]


# -- a default-off path the logs show enabled -------------------------------------------------------------

CASES = Path(__file__).resolve().parent / "compliance_cases"


def guarded_temperature_script() -> str:
    """The compliance case that fits a temperature on training tokens after the artifact is written, with
    that path behind TEMP_SCALING (default off), as the binary/ternary/XNOR records have it."""
    text = (CASES / "traindata_illegal_eval_temperature.py").read_text()
    calibrate = ("    calibration = load_data_shard(sorted(glob.glob(args.train_files))[0])[:65536]\n"
                 "    temperature = find_temperature(model, calibration)\n")
    setting = '    val_files = "./data/datasets/fineweb10B_sp1024/fineweb_val_*.bin"\n'
    assert calibrate in text and setting in text
    guarded = "    temperature = 1.0\n    if args.temp_scaling:\n" + calibrate.replace("    ", "        ")
    return ("import os\n" + text.replace(calibrate, guarded)
            .replace(setting, setting + '    temp_scaling = bool(int(os.environ.get("TEMP_SCALING", "0")))\n'))


def test_a_default_off_path_the_logs_show_enabled_is_judged_enabled(tmp_path: Path) -> None:
    cases = {"on": ("seq_len=1024 temp_scaling=True vocab_size=1024\n", "fail", "train.log:1 `temp_scaling=True`"),
             "printed": ("", "fail", "train.log:10 `temp_scaling optimal_T:0.90"),
             "off": ("seq_len=1024 temp_scaling=False vocab_size=1024\n", "warn", "left it off"),
             "silent": ("", "warn", "check the official run did not enable it")}
    for name, (settings, expected, said) in cases.items():
        log = make_log(1, 1.40, 2.0, settings=settings)
        if name == "printed":
            log += "temp_scaling optimal_T:0.90 eval_time:245ms\n"
        result = found(write(tmp_path / name, {"train_gpt.py": guarded_temperature_script(), "train.log": log}, {"val_bpb": 1.40}))
        [item] = result["compliance.train_data_at_eval"]
        assert item.status == expected and said in item.message, (name, item.message)
