"""The challenge's constants and thresholds, in one place, each with its source.

Sources are cited as in ../shared/RULES.md: "README" is the challenge repository's README
(openai/parameter-golf), "#N" an issue or pull request of that repository. No other module writes
these numbers as literals.
"""

from __future__ import annotations

RULES_VERSION = "2026-05-02"  # the fixtures' snapshot of the challenge repository (commit 4908dc46f21e)

# R1: artifact size. Decimal megabytes: 16,000,000, not 16 MiB. (README FAQ)
ARTIFACT_CAP_BYTES = 16_000_000
# R1.2: the file whose bytes count as the submission's code. (README FAQ)
COUNTED_CODE_FILE = "train_gpt.py"

# R2: time and hardware. (README; README FAQ)
TRAIN_TIME_LIMIT_S = 600.0
EVAL_TIME_LIMIT_S = 600.0
REFERENCE_HARDWARE = "8xH100 SXM"
REFERENCE_WORLD_SIZE = 8
RECORD_TRACK = "track_10min_16mb"
NON_RECORD_TRACK = "track_non_record_16mb"
TRACKS = (RECORD_TRACK, NON_RECORD_TRACK)

# R3.6: sliding-window evaluation at stride 64, common practice since the 2026-03-19 record.
EVAL_STRIDE = 64
DEFAULT_SEQ_LEN = 1024  # the baseline's training and evaluation sequence length (challenge train_gpt.py)

# R5: significance. (README, Submission Process 1)
RECORD_MARGIN_NATS = 0.005
SIGNIFICANCE_P = 0.01
USUAL_SEED_COUNT = 3  # "usually 3 seeds" (README, Submission Process 1)

# R3.3: the challenge's shard format and tokenizer. (challenge data export code)
SHARD_MAGIC = 20240520
SHARD_VERSION = 1
SHARD_HEADER_INTS = 256
SHARD_TOKENS_MAX = 100_000_000  # 1e8 tokens per shard; the last one holds fewer
SHARD_TOKEN_DTYPE = "<u2"  # little-endian uint16
PAD_ID, BOS_ID, EOS_ID, UNK_ID = 0, 1, 2, 3
BASELINE_VOCAB_SIZE = 1024
VAL_DOCS = 50_000  # R3.1: the validation split is the first 50,000 documents

# R3.4: validation token counts of the sp1024 split seen in accepted records' logs (fixtures/records).
# Any other count is flagged (a different split or tokenizer must be justified, R3.5).
KNOWN_VAL_TOKEN_COUNTS = {
    62_021_632: "sp1024 split as logged by most records, e.g. 2026-03-18_LongContextSeq2048/train.log",
    63_779_840: "sp1024 split as logged by 2026-03-17_NaiveBaseline/train.log (the first export)",
}
# The same, per dataset directory the logs name (`train_loader:dataset:`, `datasets_dir:`), each count
# with the fixture logs that show it. Logs print the count after trimming the split to whole windows
# of the evaluation length, so a known count trimmed to a multiple of a longer window also occurs
# (62,013,440 and 61,997,056 for sp1024 at 16,384 and 32,768 in 2026-04-04_GDN_Hybrid_LongContext).
VAL_TOKEN_COUNTS_BY_DATASET = {
    "fineweb10B_sp1024": KNOWN_VAL_TOKEN_COUNTS,
    "fineweb10B_sp4096": {
        45_508_608: "2026-04-01_Vocab4096_MLPMult4_WD085/train_seed*.log, 2026-04-04_SP4096_DepthRecurrence_*",
        45_514_752: "2026-04-03_MuonEqR_DepthRecurrence_WD090_AllInt6/train_seed*.log",
    },
    "fineweb10B_sp8192": {
        40_540_160: "2026-04-05_SP8192_GPTQ-Embeddings_SDClip_Loop45x2/train_seed*.log and later SP8192 records",
    },
    # Re-tokenised with lossless case operators (R3.5); both directory names hold the same split.
    "fineweb10B_sp8192_caseops": {
        47_851_520: "2026-04-19_SP8192_CaseOps_GatedAttn_QuantGate_Loop45_PhasedTTT/train_seed*.log",
    },
    "fineweb10B_sp8192_lossless_caps_caseops_v1_reserved": {
        47_851_520: "2026-04-18_PR1626_CaseOps_Taper/train_seed*.log",
    },
    "fineweb10B_byte260": {
        151_130_112: "track_non_record_16mb/2026-03-29_HNet_ByteVsSubword_Study/train_byte260_*.log",
    },
}

# R6.1: what a submission folder must hold. (README, Submission Process)
REQUIRED_FILES = ("README.md", "submission.json", COUNTED_CODE_FILE)
# R6.1: what submission.json should state: "name, GitHub id, val_bpb" (README, Submission Process).
SUBMISSION_README_KEYS = ("name", "github_id", "val_bpb")

# Harness policy (ours, not the challenge's): limits that keep hostile folders from hurting us.
MAX_FILE_BYTES = 50_000_000  # files over 50 MB in a submission folder are refused
MAX_DECOMPRESSED_BYTES = 1_000_000_000  # decompressing an artifact stops beyond 1 GB
CLAIM_TOLERANCE_BPB = 1e-4  # claimed vs logged val_bpb (issue: claims within 1e-4)
# A run stopped by the wall-clock cap overshoots it by the step that crosses it plus the check's
# synchronisation; accepted records overshoot by up to 1.6 steps. Within this many steps it passes.
TRAIN_OVERSHOOT_STEPS = 2
EVAL_CLAIM_TOLERANCE_BPB = 5e-4  # trusted re-evaluation vs claimed val_bpb (default of `harness eval`)

# Harness policy for `harness verify` on hardware other than REFERENCE_HARDWARE: measured seconds times
# these factors give a projection to one H100 SXM, labelled as such and never reported as the official
# budget checked; runs on fewer than 8 GPUs are further scaled by nproc / 8 (perfect scaling assumed).
# H200 -> H100: the trusted evaluator's plain compiled path on the same model took 123.5 s per split on an
# H100 80GB HBM3 and 113.25 s on an H200 (bench/results/eval_throughput_*; bench/README.md): 1.09.
TIME_FACTORS_TO_H100 = {"H100": 1.0, "H200": 1.09}
# Significance policies (R5.1, R5.2), by name: the margin in nats and the p-value a record must reach.
SIGNIFICANCE_POLICIES = {
    # The README's written rule: beat the record by 0.005 nats at p < 0.01 (waived for systems-only changes).
    "readme": {"margin_nats": RECORD_MARGIN_NATS, "p": SIGNIFICANCE_P,
               "source": "README, Submission Process 1 (R5.1)"},
    # What maintainers applied from late April 2026: one-sided Welch p < 0.25 against the previous frontier
    # row, no margin; the leaderboard shows rows accepted at p = 0.063 and 0.188 (R5.2).
    "frontier": {"margin_nats": 0.0, "p": 0.25,
                 "source": "leaderboard practice from late April 2026 (R5.2)"},
}
DEFAULT_SIGNIFICANCE_POLICY = "readme"
# Scripts whose own evaluator treats the split's tail differently (drops the tokens past the last whole
# window, or scores the final tokens once per trailing window) differ from the exact number by at most
# about one window's share of the split: allowance = seq_len / val_tokens x val_bpb (measured 2.6e-3 and
# 8.6e-4 bpb on the example split for two early records, both within it).
TAIL_ALLOWANCE_WINDOWS = 1.0
DEFAULT_VERIFY_SEEDS = (1337, 42, 2025)
# The environment variables the challenge's baseline and its descendants read for the training length:
# verify reports a run they shortened, the probe sets them to cut training short.
TRAINING_LENGTH_ENV = ("ITERATIONS", "MAX_WALLCLOCK_SECONDS")

# Harness policy for `harness ci` (ours, not the challenge's): what one pull request may add to the
# challenge's repository (R6.1: one new folder under records/<track>/). The largest files the 58
# record-adding pull requests of its history added (those tools/ci_history.py walks, at 4908dc46f21e)
# are train logs of 205 KB and binaries (tokenizer models, a PDF, plots) of 371 KB.
RECORDS_DIR = "records"
CI_MAX_BINARY_BYTES = 1_000_000  # a binary file over this fails ci.binary
CI_MAX_FILE_BYTES = 5_000_000  # any file over this fails ci.file_size
# Model weights and data shards fail ci.binary at any size: the artifact is what train_gpt.py rebuilds
# (R1.3), and the data is the challenge's export.
CI_WEIGHT_SUFFIXES = (".pt", ".pth", ".ptz", ".bin", ".safetensors", ".ckpt", ".onnx", ".gguf", ".h5", ".npy")

# Harness policy for the sandbox (ours, not the challenge's): limits on every sandboxed process tree
# (harness/reproduce/limits.py applies them; each call may set its own). Generous for a real run (8 GPUs,
# compile workers, checkpoints, compile caches in the work dir), small enough that a hostile script cannot
# take the machine down. Nothing here bounds GPU memory.
SANDBOX_MEMORY_FRACTION = 0.75  # of the machine's memory: the tree's cgroup, or each CPU process's address space
SANDBOX_SHM_FRACTION = 0.25  # of the machine's memory: the run's private /dev/shm (NCCL, DataLoader buffers)
SANDBOX_MAX_TASKS = 16_384  # processes and threads: torch starts a thread pool per process, inductor compile workers
SANDBOX_MAX_FILE_BYTES = 16 * 2**30  # one file (RLIMIT_FSIZE): an uncompressed checkpoint of a 16 MB model fits
SANDBOX_MAX_OPEN_FILES = 65_536  # RLIMIT_NOFILE, never above the hard limit the harness itself was given
SANDBOX_WORK_DIR_BYTES = 64 * 2**30  # disk a run may fill in its work dir, checked every second
SANDBOX_WORK_DIR_FILES = 500_000  # entries in the work dir (a compile cache holds thousands)
SANDBOX_OUTPUT_BYTES = 256 * 2**20  # printed to stdout and stderr (records' train logs are a few MB)
SANDBOX_OUTPUT_LINES = 2_000_000
# CPU seconds per process (RLIMIT_CPU) = the wall-clock limit x this x the cores the harness may use: a
# process busy on every core for the whole run stays under it; a call may set less.
SANDBOX_CPU_PER_WALL = 1.0
