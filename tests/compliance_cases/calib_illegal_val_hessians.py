# GPTQ Hessians collected with forward hooks on validation tokens (R4.6).
# expect-verdict: flag
# expect-hit: val_calibration flag calibration_on_val
import torch


def collect_hessians(model, tokens, seq_len, batches):
    hessians = {}

    def hook(module, inputs, output):
        x = inputs[0].flatten(0, 1).float()
        hessians[module] = hessians.get(module, 0) + x.T @ x

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, torch.nn.Linear)]
    with torch.no_grad():
        for b in range(batches):
            model.forward_logits(tokens[None, b * seq_len:(b + 1) * seq_len])
    for handle in handles:
        handle.remove()
    return hessians


def quantize(model, val_tokens):
    hessians = collect_hessians(model, val_tokens, 2048, 64)
    return {name: h.shape for name, h in hessians.items()}
