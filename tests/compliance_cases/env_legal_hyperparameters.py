# Hyperparameters and torchrun variables from the environment, as every record does.
# expect-verdict: clean
import os


class Hyperparameters:
    seed = int(os.environ.get("SEED", 1337))
    ttt_enabled = bool(int(os.environ.get("TTT_ENABLED", "0")))
    rank = int(os.environ.get("RANK", "0"))
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    distributed = "RANK" in os.environ and "WORLD_SIZE" in os.environ
