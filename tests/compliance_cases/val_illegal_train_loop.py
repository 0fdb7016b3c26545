# The training loop draws some of its batches from the validation split (a loader over val_files);
# periodic validation in the same loop does not make that measurement.
# expect-verdict: flag
# expect-hit: val_in_training flag val_in_training_loop
import glob

import numpy as np
import torch
import torch.nn.functional as F


class Hyperparameters:
    train_files = "./data/datasets/fineweb10B_sp1024/fineweb_train_*.bin"
    val_files = "./data/datasets/fineweb10B_sp1024/fineweb_val_*.bin"


class Loader:
    def __init__(self, pattern):
        self.tokens = torch.from_numpy(np.fromfile(sorted(glob.glob(pattern))[0], dtype=np.uint16).astype(np.int64))
        self.pos = 0

    def next_batch(self, n):
        chunk = self.tokens[self.pos:self.pos + n + 1]
        self.pos += n
        return chunk[:-1][None], chunk[1:][None]


def eval_val(model, val_tokens):
    with torch.no_grad():
        val_loss = F.cross_entropy(model.forward_logits(val_tokens[None, :-1])[0], val_tokens[1:], reduction="sum")
    return val_loss.item()


def main(model):
    args = Hyperparameters()
    train_loader = Loader(args.train_files)
    extra = Loader(args.val_files)
    val_tokens = extra.tokens
    opt = torch.optim.AdamW(model.parameters(), lr=3e-4)
    for step in range(2000):
        if step % 500 == 0:
            print(f"step:{step} val_loss:{eval_val(model, val_tokens):.4f}")
        x, y = extra.next_batch(4096) if step % 4 == 0 else train_loader.next_batch(4096)
        opt.zero_grad()
        model(x, y).backward()
        opt.step()
