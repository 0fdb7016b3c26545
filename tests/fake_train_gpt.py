"""A stand-in for a submission's train_gpt.py, for the runner's tests: no torch, runs in a blink.

It behaves like the challenge's script where the runner can see it: reads SEED, RUN_ID, DATA_PATH,
TOKENIZER_PATH and ITERATIONS from the environment, writes logs/<RUN_ID>.txt (its own source first, as
the challenge's logger does) and final_model.int8.ptz in its working directory, and prints the
challenge's line formats. Its scores are a fixed function of the seed, so tests can pin them.
Knobs for failure cases (set through the runner's --env): FAKE_FAIL_SEEDS="2,5" exits 1 after a few
lines for those seeds, FAKE_SLEEP_S sleeps before training (timeouts), FAKE_COUNTER_SOCKET sends
"<seed>" to that Unix datagram socket for every run (to see which seeds ran: the sandbox lets a run write
only its own work dir), FAKE_NO_ARTIFACT=1 skips the artifact.
"""

import glob
import os
import socket
import sys
import time
from pathlib import Path

SOURCE = Path(__file__).read_text(encoding="utf-8")
ARTIFACT = "final_model.int8.ptz"


def main() -> int:
    if int(os.environ.get("RANK", "0")) != 0:
        return 0  # under torchrun, rank 0 does the logging and writing, as the challenge's script does
    seed = int(os.environ["SEED"])
    run_id = os.environ["RUN_ID"]
    iterations = int(os.environ.get("ITERATIONS", "20"))
    Path("logs").mkdir(exist_ok=True)
    log_path = Path("logs") / f"{run_id}.txt"
    print(log_path)

    def log0(message: str, console: bool = True) -> None:
        if console:
            print(message, flush=True)
        with log_path.open("a", encoding="utf-8") as handle:
            handle.write(message + "\n")

    log0(SOURCE, console=False)
    log0("=" * 100, console=False)
    if os.environ.get("FAKE_COUNTER_SOCKET"):
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as counter:
            counter.sendto(str(seed).encode(), os.environ["FAKE_COUNTER_SOCKET"])
    # The runner lays the data out where the script expects it; fail as a real script would if not.
    val_files = sorted(glob.glob(os.path.join(os.environ["DATA_PATH"], "fineweb_val_*.bin")))
    if not val_files or not os.path.isfile(os.environ["TOKENIZER_PATH"]):
        log0(f"error: no data at DATA_PATH={os.environ['DATA_PATH']} TOKENIZER_PATH={os.environ['TOKENIZER_PATH']}")
        return 3
    log0(f"val_loader:shards pattern={os.environ['DATA_PATH']}/fineweb_val_*.bin files:{len(val_files)}")
    log0(f"env_vocab_size:{os.environ.get('VOCAB_SIZE')} env_home_secret:{os.environ.get('PGOLF_TEST_SECRET')}")
    log0(f"world_size:{os.environ.get('WORLD_SIZE', '1')} grad_accum_steps:1")
    log0(f"seed:{seed}")
    time.sleep(float(os.environ.get("FAKE_SLEEP_S", "0")))
    fail = str(seed) in os.environ.get("FAKE_FAIL_SEEDS", "").split(",")
    loss = 6.0
    for step in range(1, iterations + 1):
        loss = 6.0 - 3.0 * step / iterations + seed * 1e-4
        log0(f"step:{step}/{iterations} train_loss:{loss:.4f} train_time:{step * 10}ms step_avg:10.00ms")
        if fail and step == 3:
            log0("Traceback (most recent call last):")
            log0(f"RuntimeError: fake failure for seed {seed}")
            return 1
    val_loss, val_bpb = 3.0 + seed * 1e-4, 1.5 + seed * 1e-5
    log0(f"step:{iterations}/{iterations} val_loss:{val_loss:.4f} val_bpb:{val_bpb:.4f} "
         f"train_time:{iterations * 10}ms step_avg:10.00ms")
    model_bytes = 1000 + seed
    code_bytes = len(SOURCE.encode("utf-8"))
    if not os.environ.get("FAKE_NO_ARTIFACT"):
        Path(ARTIFACT).write_bytes(b"\0" * model_bytes)
    log0(f"Serialized model int8+zlib: {model_bytes} bytes (payload:{model_bytes} raw_torch:{model_bytes} payload_ratio:1.00x)")
    log0(f"Code size: {code_bytes} bytes")
    log0(f"Total submission size int8+zlib: {model_bytes + code_bytes} bytes")
    log0(f"final_int8_zlib_roundtrip val_loss:{val_loss:.4f} val_bpb:{val_bpb:.4f} eval_time:5ms")
    log0(f"final_int8_zlib_roundtrip_exact val_loss:{val_loss:.8f} val_bpb:{val_bpb:.8f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
