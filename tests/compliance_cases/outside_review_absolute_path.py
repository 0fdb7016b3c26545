# Reads a file from an absolute path outside the submission and the data folders.
# expect-verdict: needs_review
# expect-hit: outside_files review outside_path
import torch


def load_teacher():
    return torch.load("/opt/teacher/model.pt")
