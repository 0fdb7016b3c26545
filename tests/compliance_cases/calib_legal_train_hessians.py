# The same calibration on training batches, before the artifact is written: legal.
# expect-verdict: clean
import io
import lzma

import torch


def collect_hessians(model, train_loader, batches):
    hessians = {}

    def hook(module, inputs, output):
        x = inputs[0].flatten(0, 1).float()
        hessians[module] = hessians.get(module, 0) + x.T @ x

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, torch.nn.Linear)]
    with torch.no_grad():
        for _ in range(batches):
            x, _y = train_loader.next_batch()
            model.forward_logits(x)
    for handle in handles:
        handle.remove()
    return hessians


def serialize(model, train_loader):
    hessians = collect_hessians(model, train_loader, 64)
    buf = io.BytesIO()
    torch.save({"state": model.state_dict(), "n": len(hessians)}, buf)
    with open("final_model.ptz", "wb") as f:
        f.write(lzma.compress(buf.getvalue()))
