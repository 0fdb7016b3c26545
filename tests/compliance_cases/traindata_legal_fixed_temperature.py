# The temperature is fitted on training tokens during training and stored in the artifact (paid for
# inside the cap); evaluation reads only the artifact and the validation split.
# expect-verdict: clean
import glob
import io
import zlib

import numpy as np
import torch
import torch.nn.functional as F


def load_data_shard(path):
    return torch.from_numpy(np.fromfile(path, dtype=np.uint16).astype(np.int64))


def eval_val(model, tokens, temperature):
    with torch.no_grad():
        val_loss = F.cross_entropy(model.forward_logits(tokens[None, :-1])[0] / temperature, tokens[1:], reduction="sum")
    return val_loss.item()


def main(model, train_pattern, val_pattern):
    calibration = load_data_shard(sorted(glob.glob(train_pattern))[0])[:65536]
    with torch.no_grad():
        temperature = min((0.8, 0.9, 1.0), key=lambda t: F.cross_entropy(model.forward_logits(calibration[None, :-1])[0] / t, calibration[1:]).item())
    buf = io.BytesIO()
    torch.save({"state": model.state_dict(), "temperature": temperature}, buf)
    with open("final_model.int8.ptz", "wb") as f:
        f.write(zlib.compress(buf.getvalue()))
    with open("final_model.int8.ptz", "rb") as f:
        blob = torch.load(io.BytesIO(zlib.decompress(f.read())))
    model.load_state_dict(blob["state"])
    val_tokens = torch.cat([load_data_shard(p) for p in sorted(glob.glob(val_pattern))])
    print(f"val_loss:{eval_val(model, val_tokens, blob['temperature']):.4f}")
