# A "paid prefix": validation tokens are stored in the artifact next to the weights.
# expect-verdict: flag
# expect-hit: val_in_training flag val_in_artifact
import numpy as np
import torch


def main(model):
    val_tokens = torch.from_numpy(np.fromfile("data/datasets/fineweb10B_sp1024/fineweb_val_000000.bin", dtype=np.uint16))
    blob = {"model": model.state_dict(), "prefix": val_tokens[:200_000].clone()}
    torch.save(blob, "final_model.pt")
