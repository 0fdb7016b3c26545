"""A submission whose own evaluation hook inflates its artifact, a zlib bomb, in one piece: the harness's
size-limited decompression never sees it, only the worker's memory limit can stop it."""

import zlib


def load_eval_model(artifact_path, device):
    with open(artifact_path, "rb") as handle:
        weights = zlib.decompress(handle.read())
    raise RuntimeError(f"bomb_loader: inflated {len(weights):,} bytes and was never stopped")
