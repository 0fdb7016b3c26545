# Reads the data folder, the script's own text and a temporary file: all allowed.
# expect-verdict: clean
import glob

import numpy as np


def inputs(code_path):
    shards = sorted(glob.glob("./data/datasets/fineweb10B_sp1024/fineweb_train_*.bin"))
    with open(code_path) as handle:
        code = handle.read()
    with open("/tmp/ttt_counter", "rb") as handle:
        counter = handle.read()
    return shards, code, counter, np.fromfile(shards[0], dtype=np.uint16)
