# The usual baseline shape: a training loop on training shards with periodic validation, then the
# artifact is written, reloaded and scored.
# expect-verdict: clean
import glob
import io
import zlib

import numpy as np
import torch
import torch.nn.functional as F


def load_data_shard(path):
    return torch.from_numpy(np.fromfile(path, dtype=np.uint16).astype(np.int64))


class TokenStream:
    def __init__(self, pattern):
        self.files = sorted(glob.glob(pattern))
        self.tokens = load_data_shard(self.files[0])
        self.pos = 0

    def take(self, n):
        out = self.tokens[self.pos:self.pos + n]
        self.pos += n
        return out


def eval_val(model, val_tokens, seq_len):
    val_loss_sum = torch.zeros((), dtype=torch.float64)
    model.eval()
    with torch.no_grad():
        for s in range(0, val_tokens.numel() - seq_len, seq_len):
            x, y = val_tokens[s:s + seq_len][None], val_tokens[s + 1:s + seq_len + 1][None]
            val_loss_sum += model(x, y).double() * seq_len
    model.train()
    return val_loss_sum.item()


def main(model, train_pattern, val_pattern):
    stream = TokenStream(train_pattern)
    val_tokens = torch.cat([load_data_shard(p) for p in sorted(glob.glob(val_pattern))])
    opt = torch.optim.AdamW(model.parameters(), lr=3e-4)
    for step in range(5000):
        if step % 1000 == 0:
            print(f"step:{step} val_loss:{eval_val(model, val_tokens, 1024):.4f}")
        chunk = stream.take(1025)
        opt.zero_grad()
        model(chunk[:-1][None], chunk[1:][None]).backward()
        opt.step()
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    with open("final_model.int8.ptz", "wb") as f:
        f.write(zlib.compress(buf.getvalue()))
    with open("final_model.int8.ptz", "rb") as f:
        model.load_state_dict(torch.load(io.BytesIO(zlib.decompress(f.read()))))
    print(f"final val_loss:{eval_val(model, val_tokens, 1024):.4f}")
