# The validation tokens hide behind a module-level alias (DATA) that the training step reads.
# expect-verdict: flag
# expect-hit: val_in_training flag val_in_training_loop
import numpy as np
import torch
import torch.nn.functional as F

DATA = torch.from_numpy(np.fromfile("data/datasets/fineweb10B_sp1024/fineweb_val_000000.bin", dtype=np.uint16).astype(np.int64))


def measure(model, tokens):
    with torch.no_grad():
        val_loss = F.cross_entropy(model.forward_logits(tokens[None, :-1])[0], tokens[1:], reduction="sum")
    return val_loss.item()


def train(model, steps):
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    for step in range(steps):
        if step % 100 == 0:
            print(measure(model, DATA[:65537]))
        s = (step * 4096) % (DATA.numel() - 4097)
        batch = DATA[s:s + 4097]
        opt.zero_grad()
        model(batch[None, :-1], batch[None, 1:]).backward()
        opt.step()
