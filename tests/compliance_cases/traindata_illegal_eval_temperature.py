# After the artifact is written and reloaded, a softmax temperature is fitted on training tokens: the
# evaluation reads training data (R1.3).
# expect-verdict: flag
# expect-hit: train_data_at_eval flag train_data_after_artifact
import glob
import io
import zlib

import numpy as np
import torch
import torch.nn.functional as F


class Hyperparameters:
    train_files = "./data/datasets/fineweb10B_sp1024/fineweb_train_*.bin"
    val_files = "./data/datasets/fineweb10B_sp1024/fineweb_val_*.bin"


def load_data_shard(path):
    return torch.from_numpy(np.fromfile(path, dtype=np.uint16).astype(np.int64))


def eval_val(model, tokens, temperature=1.0):
    with torch.no_grad():
        val_loss = F.cross_entropy(model.forward_logits(tokens[None, :-1])[0] / temperature, tokens[1:], reduction="sum")
    return val_loss.item()


def find_temperature(model, tokens):
    with torch.no_grad():
        return min((0.8, 0.9, 1.0, 1.1), key=lambda t: F.cross_entropy(model.forward_logits(tokens[None, :-1])[0] / t, tokens[1:]).item())


def main(model):
    args = Hyperparameters()
    val_tokens = torch.cat([load_data_shard(p) for p in sorted(glob.glob(args.val_files))])
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    with open("final_model.int8.ptz", "wb") as f:
        f.write(zlib.compress(buf.getvalue()))
    with open("final_model.int8.ptz", "rb") as f:
        model.load_state_dict(torch.load(io.BytesIO(zlib.decompress(f.read()))))
    calibration = load_data_shard(sorted(glob.glob(args.train_files))[0])[:65536]
    temperature = find_temperature(model, calibration)
    print(f"val_loss:{eval_val(model, val_tokens, temperature):.4f}")
