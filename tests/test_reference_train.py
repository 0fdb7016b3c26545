"""The reference trainer (reference_train/train_gpt.py) end to end on the CPU, at a tiny configuration.

Two real runs on small synthetic shards (one process with the defaults, two gloo processes with every
option on) are shared by the tests below: log formats, the artifact and its size, the evaluation hook
against the logged roundtrip score, forward_logits with last_n, the sliding-window score (split over
the two processes) against an independent per-target computation, and two processes against one for
the same global batch (the options change only the export and the final evaluation).
"""

import importlib.util
import io
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from harness import rules
from harness.data.bytes import build_byte_table, token_byte_counts
from harness.data.shards import write_shard

REPO = Path(__file__).resolve().parents[1]
TRAINER = REPO / "reference_train" / "train_gpt.py"
REAL_TOKENIZER = REPO.parent / "shared" / "tokenizers" / "fineweb_1024_bpe.model"

SEQ_LEN, STRIDE, VAL_TOKENS = 64, 16, 1500
# MODEL_DIM 192 makes the MLP matrices (384 x 192) larger than 65,536 elements, so they are quantised.
TINY = dict(NUM_LAYERS="2", MODEL_DIM="192", NUM_HEADS="4", NUM_KV_HEADS="2", MLP_MULT="2",
            TRAIN_SEQ_LEN=str(SEQ_LEN), TRAIN_BATCH_TOKENS="1024", ITERATIONS="6", WARMUP_STEPS="2",
            VAL_BATCH_SIZE="4096", VAL_LOSS_EVERY="3", TRAIN_LOG_EVERY="2", SEED="7",
            TIED_EMBED_LR="0.01", MATRIX_LR="0.02", SCALAR_LR="0.02",  # the baseline's rates spike this early
            MAX_WALLCLOCK_SECONDS="0", WARMDOWN_ITERS="3",  # a clock-estimated warm-down would vary between runs
            MICRO_BATCH_TOKENS="128")  # 1 process: 8 micro-steps, 2 processes: 4 each (the same 8 spans)
OPTIONS = dict(SLIDING_WINDOW_EVAL="1", EVAL_STRIDE=str(STRIDE), EVAL_BATCH_SEQS="8", QUANT="int6", FP16_EMBED="1")

STEP_TRAIN = re.compile(r"^step:(\d+)/6 train_loss:(\d+\.\d{4}) train_time:\d+ms step_avg:\d+\.\d{2}ms$", re.M)
STEP_VAL = re.compile(r"^step:(\d+)/6 val_loss:(\d+\.\d{4}) val_bpb:(\d+\.\d{4}) train_time:\d+ms step_avg:\d+\.\d{2}ms$", re.M)


def load_trainer():
    spec = importlib.util.spec_from_file_location("reference_train_gpt", TRAINER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def markov_tokens(count: int, vocab: int, seed: int) -> np.ndarray:
    """BOS-led documents from a random first-order chain (4 successors per token): learnable, cheap."""
    rng = np.random.default_rng(seed)
    successors = np.random.default_rng(0).integers(4, vocab, size=(vocab, 4))
    out, token = np.empty(count, dtype=np.int64), rules.BOS_ID
    for i in range(count):
        token = rules.BOS_ID if i % 200 == 0 else successors[token, rng.integers(4)]
        out[i] = token
    return out


@pytest.fixture(scope="module")
def tokenizer() -> Path:
    if REAL_TOKENIZER.is_file():
        return REAL_TOKENIZER
    from harness.data.location import example_dataset  # builds the offline example tokenizer when missing

    return example_dataset().tokenizer_path


@pytest.fixture(scope="module")
def dataset(tmp_path_factory, tokenizer) -> Path:
    import sentencepiece as spm

    vocab = int(spm.SentencePieceProcessor(model_file=str(tokenizer)).vocab_size())
    root = tmp_path_factory.mktemp("data")
    # Two train shards: six steps of 8 spans of 129 tokens cross the boundary between them.
    write_shard(root / "fineweb_train_000000.bin", markov_tokens(4000, vocab, 1))
    write_shard(root / "fineweb_train_000001.bin", markov_tokens(4000, vocab, 2))
    write_shard(root / "fineweb_val_000000.bin", markov_tokens(VAL_TOKENS, vocab, 3))
    return root


def run_trainer(work: Path, dataset: Path, tokenizer: Path, extra: dict, nproc: int = 1) -> dict:
    import sentencepiece as spm

    work.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_"))}
    env.update(TINY, **extra, DATA_PATH=str(dataset), TOKENIZER_PATH=str(tokenizer), RUN_ID="run",
               VOCAB_SIZE=str(spm.SentencePieceProcessor(model_file=str(tokenizer)).vocab_size()),
               CUDA_VISIBLE_DEVICES="", PYTHONUNBUFFERED="1")
    launcher = [sys.executable] if nproc == 1 else [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}"]
    proc = subprocess.run([*launcher, str(TRAINER)], cwd=work, env=env, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return {"work": work, "log": (work / "logs" / "run.txt").read_text(encoding="utf-8"), "stdout": proc.stdout, "env": env}


@pytest.fixture(scope="module")
def default_run(tmp_path_factory, dataset, tokenizer):
    return run_trainer(tmp_path_factory.mktemp("default"), dataset, tokenizer, {})


@pytest.fixture(scope="module")
def options_run(tmp_path_factory, dataset, tokenizer):
    pytest.importorskip("zstandard", reason="QUANT=int6 compresses with zstd")
    return run_trainer(tmp_path_factory.mktemp("options"), dataset, tokenizer, OPTIONS, nproc=2)


def metric(log: str, label: str) -> tuple[float, float]:
    m = re.search(rf"^{label} val_loss:(\d+\.\d{{8}}) val_bpb:(\d+\.\d{{8}})$", log, re.M)
    assert m, f"no {label} line with 8 decimals"
    return float(m[1]), float(m[2])


def val_windows(dataset: Path) -> np.ndarray:
    from harness.data.shards import read_shard

    return np.asarray(read_shard(dataset / "fineweb_val_000000.bin"), dtype=np.int64)


def test_log_embeds_source_and_uses_the_challenge_formats(default_run):
    log, work = default_run["log"], default_run["work"]
    source = TRAINER.read_text(encoding="utf-8")
    assert log.startswith(source)
    assert log[len(source) :].startswith("\n" + "=" * 100 + "\n")
    usable = (VAL_TOKENS - 1) // SEQ_LEN * SEQ_LEN
    assert re.search(rf"^val_loader:shards pattern=\S+/fineweb_val_\*\.bin tokens:{usable}$", log, re.M)
    assert "world_size:1 grad_accum_steps:8\n" in log and "attention_backend:sdpa_cpu\n" in log
    assert [int(s) for s, _ in STEP_TRAIN.findall(log)] == [1, 2, 3, 4, 5, 6]
    assert [int(s) for s, _, _ in STEP_VAL.findall(log)] == [0, 3, 6]
    assert [f"warmup_step:{i}/2" in log for i in (1, 2)] == [True, True]
    code_bytes = len(source.encode("utf-8"))
    assert f"\nCode size: {code_bytes} bytes\n" in log
    artifact = work / "final_model.int8.ptz"
    size = artifact.stat().st_size
    assert re.search(rf"^Serialized model int8\+zlib: {size} bytes \(payload:\d+ raw_torch:\d+ payload_ratio:\d+\.\d\dx\)$", log, re.M)
    assert f"\nTotal submission size int8+zlib: {size + code_bytes} bytes\n" in log
    assert size + code_bytes < rules.ARTIFACT_CAP_BYTES
    assert re.search(r"^final_int8_zlib_roundtrip val_loss:\d+\.\d{4} val_bpb:\d+\.\d{4} eval_time:\d+ms$", log, re.M)
    loss, bpb = metric(log, "final_int8_zlib_roundtrip_exact")
    assert 0 < loss < math.log(1024) + 1 and 0 < bpb
    assert "sliding_window" not in log.split("=" * 100)[-1]  # an option, off by default
    assert log.split("=" * 100)[-1].strip().splitlines()[-1] in default_run["stdout"]  # logged to stdout too
    first_losses = [float(v) for _, v in STEP_TRAIN.findall(log)]
    assert first_losses[-1] < first_losses[0]  # it learns


def test_harness_log_parser_reads_the_score(default_run):
    logs = pytest.importorskip("harness.submission.logs")
    run = logs.parse_log(default_run["log"])
    loss, bpb = metric(default_run["log"], "final_int8_zlib_roundtrip_exact")
    assert run.score().val_bpb == pytest.approx(bpb, abs=1e-9)
    assert run.val_token_count == (VAL_TOKENS - 1) // SEQ_LEN * SEQ_LEN


def test_hook_reproduces_the_roundtrip_score(default_run, dataset, tokenizer):
    trainer = load_trainer()
    model = trainer.load_eval_model(str(default_run["work"] / "final_model.int8.ptz"), "cpu")
    assert (model.eval_seq_len, model.vocab_size, model.training) == (SEQ_LEN, 1024, False)
    tokens = val_windows(dataset)
    usable = (len(tokens) - 1) // SEQ_LEN * SEQ_LEN
    x = torch.from_numpy(tokens[:usable]).reshape(-1, SEQ_LEN)
    y = torch.from_numpy(tokens[1 : usable + 1]).reshape(-1, SEQ_LEN)
    with torch.no_grad():
        logits = model.forward_logits(x).double()
    nll = (torch.logsumexp(logits, -1) - logits.gather(-1, y[..., None])[..., 0]).sum().item()
    table = build_byte_table(tokenizer, 1024)
    byte_count = token_byte_counts(x.numpy(), y.numpy(), table).sum()
    loss, bpb = metric(default_run["log"], "final_int8_zlib_roundtrip_exact")
    assert nll / usable == pytest.approx(loss, abs=1e-5)
    assert nll / math.log(2) / byte_count == pytest.approx(bpb, abs=1e-5)


def test_artifact_quantises_matrices_and_keeps_small_and_control_tensors(default_run, options_run):
    trainer = load_trainer()
    default = torch.load(io.BytesIO(trainer.decompress((default_run["work"] / "final_model.int8.ptz").read_bytes())), weights_only=True)
    assert default["config"]["model_dim"] == 192 and default["quant"] == "int8"
    assert set(default["q"]) == {"tok_emb.weight", "blocks.0.mlp.up.weight", "blocks.0.mlp.down.weight",
                                 "blocks.1.mlp.up.weight", "blocks.1.mlp.down.weight"}
    assert default["scale"]["blocks.0.mlp.up.weight"].dtype == torch.float16
    assert default["float"]["blocks.0.attn.q.weight"].dtype == torch.float16  # 36,864 elements: small
    assert default["float"]["blocks.0.resid_mix"].dtype == torch.float32  # control tensor
    assert default["float"]["skip_weights"].dtype == torch.float32
    blob = (options_run["work"] / "final_model.int6.ptz").read_bytes()
    assert blob.startswith(trainer.ZSTD_MAGIC)
    int6 = torch.load(io.BytesIO(trainer.decompress(blob)), weights_only=True)
    assert int6["float"]["tok_emb.weight"].dtype == torch.float16  # FP16_EMBED
    assert "tok_emb.weight" not in int6["q"]
    assert max(int(q.abs().max()) for q in int6["q"].values()) <= 31


def test_quantize_rows_error_is_within_half_a_step():
    trainer = load_trainer()
    w = torch.randn(300, 256, generator=torch.Generator().manual_seed(0)) * 3
    for levels in (127, 31):
        q, scale = trainer.quantize_rows(w, levels)
        assert q.dtype == torch.int8 and int(q.abs().max()) == levels and scale.shape == (300,)
        clip = torch.quantile(w.abs(), trainer.CLIP_QUANTILE, dim=1, keepdim=True)
        inside = w.abs() <= clip
        error = (q.float() * scale.float()[:, None] - w).abs()
        assert bool((error[inside] <= scale.float()[:, None].expand_as(w)[inside] / 2 + 1e-6).all())


def test_forward_logits_last_n_equals_the_tail_of_the_full_logits(default_run):
    trainer = load_trainer()
    model = trainer.load_eval_model(str(default_run["work"] / "final_model.int8.ptz"))
    ids = torch.randint(0, 1024, (3, SEQ_LEN), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        full = model.forward_logits(ids)
        assert full.shape == (3, SEQ_LEN, 1024) and full.dtype == torch.float32
        assert float(full.abs().max()) <= model.cfg.logit_softcap
        for n in (1, 5, SEQ_LEN - 1, SEQ_LEN):
            assert torch.allclose(model.forward_logits(ids, last_n=n), full[:, -n:], atol=1e-5, rtol=0)
        shorter = model.forward_logits(ids[:, :20], last_n=7)  # any length up to the window
        assert torch.allclose(shorter, model.forward_logits(ids[:, :20])[:, -7:], atol=1e-5, rtol=0)
    with pytest.raises(ValueError):
        model.forward_logits(ids, last_n=0)


def independent_sliding(model, tokens: np.ndarray, seq_len: int, stride: int, table) -> tuple[float, float]:
    """Target t is scored with the context x[s_t : t], where s_t = 0 for t <= L, else the first multiple
    of S with s_t + L >= t; targets sharing s_t share one forward (the model is causal: the forward_logits
    test pins that), with a float64 log-softmax."""
    by_start: dict[int, list[int]] = {}
    for t in range(1, len(tokens)):
        by_start.setdefault(0 if t <= seq_len else math.ceil((t - seq_len) / stride) * stride, []).append(t)
    nll = 0.0
    for s, targets in by_start.items():
        with torch.no_grad():
            z = model.forward_logits(torch.from_numpy(tokens[s : max(targets)])[None])[0].double()
        rows = z[[t - 1 - s for t in targets]]
        nll += (torch.logsumexp(rows, -1) - rows[torch.arange(len(targets)), tokens[targets]]).sum().item()
    byte_count = int(token_byte_counts(tokens[:-1], tokens[1:], table).sum())
    return nll / (len(tokens) - 1), nll / math.log(2) / byte_count


def test_sliding_window_score_matches_an_independent_computation(options_run, dataset, tokenizer):
    trainer = load_trainer()
    log = options_run["log"]
    assert re.search(rf"^final_sliding_window val_loss:\d+\.\d{{4}} val_bpb:\d+\.\d{{4}} stride:{STRIDE} eval_seq_len:{SEQ_LEN} eval_time:\d+ms$", log, re.M)
    loss, bpb = metric(log, "final_sliding_window_exact")
    model = trainer.load_eval_model(str(options_run["work"] / "final_model.int6.ptz"))
    ref_loss, ref_bpb = independent_sliding(model, val_windows(dataset), SEQ_LEN, STRIDE, build_byte_table(tokenizer, 1024))
    assert loss == pytest.approx(ref_loss, abs=1e-5) and bpb == pytest.approx(ref_bpb, abs=1e-5)
    assert re.search(r"^Serialized model int6\+zstd: \d+ bytes", log, re.M)
    metric(log, "final_int6_roundtrip_exact")


@pytest.mark.parametrize("num_tokens", [40, 65, 66, 131])  # one window; exact fit; one extra; short last
def test_eval_sliding_in_process_covers_edge_lengths(num_tokens, tokenizer):
    trainer = load_trainer()
    torch.manual_seed(0)
    cfg = trainer.ModelConfig(num_layers=2, model_dim=32, num_heads=2, num_kv_heads=1, train_seq_len=SEQ_LEN)
    model = trainer.GPT(cfg).eval()
    for block in model.blocks:  # the zero-initialised projections would make every position alike
        torch.nn.init.normal_(block.attn.out.weight, std=0.1)
        torch.nn.init.normal_(block.mlp.down.weight, std=0.1)
    tokens = np.random.default_rng(num_tokens).integers(0, 1024, num_tokens)
    sp_tables = trainer.byte_tables(__import__("sentencepiece").SentencePieceProcessor(model_file=str(tokenizer)), 1024)
    loss, bpb = trainer.eval_sliding(model, model.forward_logits, tokens, SEQ_LEN, STRIDE, 4, sp_tables, 0, 1, torch.device("cpu"))
    ref_loss, ref_bpb = independent_sliding(model, tokens, SEQ_LEN, STRIDE, build_byte_table(tokenizer, 1024))
    assert loss == pytest.approx(ref_loss, abs=1e-5) and bpb == pytest.approx(ref_bpb, abs=1e-5)


def test_two_gloo_processes_match_one_for_the_same_global_batch(default_run, options_run):
    one, two = default_run["log"], options_run["log"]
    assert "world_size:2 grad_accum_steps:4\n" in two
    losses_one = [float(v) for _, v in STEP_TRAIN.findall(one)]
    losses_two = [float(v) for _, v in STEP_TRAIN.findall(two)]
    assert len(losses_one) == len(losses_two) == 6
    assert np.allclose(losses_one, losses_two, atol=2e-4, rtol=0)
    val_one = [(float(a), float(b)) for _, a, b in STEP_VAL.findall(one)]
    val_two = [(float(a), float(b)) for _, a, b in STEP_VAL.findall(two)]
    assert np.allclose(val_one, val_two, atol=2e-4, rtol=0) and len(val_one) == 3


def test_batch_loader_gives_each_rank_a_disjoint_span_of_one_chunk(tmp_path):
    trainer = load_trainer()
    write_shard(tmp_path / "fineweb_train_000000.bin", np.arange(50))
    write_shard(tmp_path / "fineweb_train_000001.bin", np.arange(100, 130))
    pattern, cpu = str(tmp_path / "fineweb_train_*.bin"), torch.device("cpu")
    # 16 tokens per step over 2 ranks x 2 micro-steps: spans of 4 + 1 tokens, 20 tokens per step.
    loaders = [trainer.BatchLoader(pattern, r, 2, 2, 16, 2, cpu) for r in (0, 1)]
    single = trainer.BatchLoader(pattern, 0, 1, 4, 16, 2, cpu)
    for step in range(5):  # 100 tokens: wraps around the 80-token stream
        (x0, y0), (x1, y1), (xs, ys) = loaders[0].next_batch(), loaders[1].next_batch(), single.next_batch()
        assert x0.shape == (2, 2, 2)
        assert torch.equal(xs, torch.stack([x0[0], x1[0], x0[1], x1[1]]))  # micro m of rank r = span m*2 + r
        assert torch.equal(ys, torch.stack([y0[0], y1[0], y0[1], y1[1]]))
    stream = np.concatenate([np.arange(50), np.arange(100, 130)])
    first = trainer.BatchLoader(pattern, 1, 2, 2, 16, 2, cpu).next_batch()[0]
    assert first[0].flatten().tolist() == stream[5:9].tolist()  # rank 1's first span is the chunk's second


def test_micro_steps_default_keeps_the_baselines_8_gpu_split_and_takes_fewer_larger_micro_batches_on_one():
    tg = load_trainer()
    default = tg.TrainConfig()  # 524,288 tokens per step, micro-batches of at most 262,144 per rank
    assert [tg.micro_steps(default, world) for world in (1, 2, 4, 8)] == [2, 1, 1, 1]
    assert tg.micro_steps(tg.TrainConfig(grad_accum_steps=8), 1) == 8  # an explicit value wins
    assert tg.micro_steps(tg.TrainConfig(micro_batch_tokens=65_536), 1) == 8  # the baseline's 1-GPU split
    assert tg.micro_steps(tg.TrainConfig(micro_batch_tokens=100_000), 1) == 6  # rounded up: never over the cap
