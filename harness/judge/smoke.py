"""Judging the smoke test: the script imported on the CPU and its model built from its own
hyperparameters, with an estimate of the compressed artifact from the parameter count and the
quantisation the script's source names (an estimate, labelled as such: compression is not run)."""

from __future__ import annotations

import re

from harness import rules
from harness.findings import PASS, SKIP, WARN, Finding, finding

# Bits per weight of the quantisations records use, as their source names them; the widest named wins
# the estimate (mixed schemes keep embeddings wider). Unnamed: the baseline's int8.
QUANT_BITS = {"int4": 4, "int5": 5, "int6": 6, "int8": 8}
DEFAULT_QUANT = "int8"
# Quantised weights compress further (zlib/zstd/lzma on int8 of a trained model: about 2x in our reference
# records, 7.8 MB for 17.1 M int8 weights): an estimate warns only beyond what that could bring under the cap.
COMPRESSION_HOPE = 2.0


def quantisation(source: str) -> str:
    """The widest of the quantisations the script's source names, else the baseline's int8."""
    named = {name for name in QUANT_BITS if re.search(rf"\b{name}\b", source, re.IGNORECASE)}
    return max(named, key=QUANT_BITS.get) if named else DEFAULT_QUANT


def smoke_findings(status: str, model: dict, reason: str | None, tail: list[str], script: str, source: str,
                   code_bytes: int | None) -> list[Finding]:
    """smoke.import and smoke.model from the smoke worker's outcome."""
    if status == "error":
        lines = " | ".join(line.strip() for line in tail[-3:] if line.strip())
        return [finding("smoke.import", WARN, f"the script did not import on the CPU in the sandbox: {reason}"
                        + (f"; last lines: {lines}" if lines else "") + " (the GPU run decides)", file=script)]
    found = [finding("smoke.import", PASS, "the script imports on the CPU in the sandbox", file=script)]
    if status == "skip" or not model.get("parameters"):
        found.append(finding("smoke.model", SKIP, f"no untrained model to build: {reason or 'no parameters'}",
                             file=script))
        return found
    quant = quantisation(source)
    estimate = model["parameters"] * QUANT_BITS[quant] // 8 + (code_bytes or 0)
    values = dict(model, quantisation=quant, estimated_total_bytes=estimate, cap=rules.ARTIFACT_CAP_BYTES)
    shape = (f"{model['parameters']:,} parameters, {model.get('layers')} layers, width {model.get('width')}, "
             f"vocabulary {model.get('vocab_size')}")
    if estimate > COMPRESSION_HOPE * rules.ARTIFACT_CAP_BYTES:
        found.append(finding("smoke.model", WARN, f"{shape}; at {quant} the weights alone take {estimate:,} bytes with "
                             f"the code: even compressed {COMPRESSION_HOPE:g}x they would not fit the "
                             f"{rules.ARTIFACT_CAP_BYTES:,}-byte cap (an estimate; the rebuild measures)", file=script,
                             **values))
    else:
        found.append(finding("smoke.model", PASS, f"{shape}; ≈ {estimate:,} bytes with the code at {quant} before "
                             "compression (an estimate; the rebuild measures)", file=script, **values))
    return found
