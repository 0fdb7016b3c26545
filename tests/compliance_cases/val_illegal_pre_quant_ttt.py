# "Pre-quantisation TTT": after training, the model is fine-tuned on the validation split, then
# quantised, written, reloaded and scored on the tokens it was tuned on (#1735).
# expect-verdict: flag
# expect-hit: val_in_training flag pre_quantisation_ttt
import io
import lzma

import numpy as np
import torch
import torch.nn.functional as F


def load_tokens(pattern):
    return torch.from_numpy(np.fromfile(pattern, dtype=np.uint16).astype(np.int64))


def eval_val(model, tokens, seq_len):
    val_loss_sum = 0.0
    with torch.no_grad():
        for s in range(0, tokens.numel() - seq_len, seq_len):
            val_loss_sum += F.cross_entropy(model.forward_logits(tokens[None, s:s + seq_len])[0],
                                            tokens[s + 1:s + seq_len + 1], reduction="sum").item()
    return val_loss_sum


def polish(model, tokens, seq_len, steps):
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5)
    for step in range(steps):
        s = step * seq_len
        opt.zero_grad()
        model(tokens[None, s:s + seq_len], tokens[None, s + 1:s + seq_len + 1]).backward()
        opt.step()


def main(model, train_loader):
    val_tokens = load_tokens("./data/datasets/fineweb10B_sp1024/fineweb_val_000000.bin")
    opt = torch.optim.AdamW(model.parameters(), lr=3e-4)
    for step in range(1000):
        x, y = train_loader.next_batch()
        opt.zero_grad()
        model(x, y).backward()
        opt.step()
    polish(model, val_tokens, 1024, 200)
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    with open("final_model.ptz", "wb") as f:
        f.write(lzma.compress(buf.getvalue()))
    with open("final_model.ptz", "rb") as f:
        model.load_state_dict(torch.load(io.BytesIO(lzma.decompress(f.read()))))
    print(f"val_loss:{eval_val(model, val_tokens, 1024):.4f}")
