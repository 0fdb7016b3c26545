"""A helper module beside mixed_family/train_gpt.py: the worker must find it on the script's folder."""

import torch


def softcap(logits: torch.Tensor, cap: float) -> torch.Tensor:
    return cap * torch.tanh(logits / cap)
