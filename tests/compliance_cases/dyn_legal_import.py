# importlib with a constant name and re.compile/torch.compile are ordinary code, not dynamic code.
# expect-verdict: clean
import importlib
import re

import torch

PATTERN = re.compile(r"step:(\d+)")


def fast(model):
    flash = importlib.import_module("torch.nn.functional")
    return torch.compile(model), flash
