"""Detectors about evaluation-time caches and mixtures: target-in-key lookups, caches written before
the positions they help score are scored, and scores that read the realised token.

A cache is a container written at a key that depends on token content (counts[key] += 1,
table.index_add_(0, key, ...), np.add.at(table, key, 1), cache.setdefault(key, ...)); positional
writes (x_batch[i, :n] = chunk) are not caches. The token being scored carries the TGT label (loss
targets, the [1:] shift of the token stream, what a log() picks, names like y/targets).
"""

from __future__ import annotations

from harness.compliance import events as ev
from harness.compliance.detectors import FLAG, REVIEW, Context, Hit, detector, event_hit
from harness.compliance.events import CONTENT, TGT, TRAIN, VAL, Event, common_loop, relation


def _caches(ctx: Context) -> set[str]:
    """Container ids written at token-dependent keys, over every function (after placement)."""
    if "caches" not in ctx.cache:
        found = set()
        for _, event in ctx.events(ev.CACHE_WRITE):
            if event.get("container") and _key_labels(event) & CONTENT:
                found.add(event.get("container"))
        ctx.cache["caches"] = found
    return ctx.cache["caches"]


def _key_labels(event: Event) -> frozenset:
    return frozenset().union(*(part for dim in event.get("key_dims", ()) for part in dim)) if event.get("key_dims") else frozenset()


@detector("target_in_key")
def target_in_key(ctx: Context) -> list[Hit]:
    caches = _caches(ctx)
    hits = []
    for fn in ctx.program.functions.values():
        for event in ctx.analysis.events(fn):
            if event.kind != ev.CACHE_READ or event.get("container") not in caches:
                continue
            dims = event.get("key_dims", ())
            combined = [dim for dim in dims if any(TGT in part for part in dim) and any(part and TGT not in part for part in dim)]
            alone = [dim for dim in dims if any(TGT in part for part in dim) and dim not in combined]
            name = event.get("container").rsplit(":", 1)[-1]
            via = f" (through {' → '.join(event.chain)})" if event.chain else ""
            if combined:
                hits.append(event_hit("target_in_key", FLAG, "target_in_key", event,
                                      f"{fn.qualname} looks up cache '{name}' with a key that combines the token being scored with its "
                                      f"context (line {event.line}{via})"))
            elif alone:
                hits.append(event_hit("target_in_key", REVIEW, "target_indexed_cache", event,
                                      f"{fn.qualname} reads cache '{name}' at the token being scored (line {event.line}{via}); legal only "
                                      "if that entry comes from a distribution normalised over the vocabulary before x_t is seen"))
    return hits


@detector("cache_update_before_score")
def cache_update_before_score(ctx: Context) -> list[Hit]:
    caches = _caches(ctx)
    hits = []
    for fn in ctx.program.functions.values():
        by_container: dict[str, tuple[list[Event], list[Event]]] = {}
        for event in ctx.analysis.events(fn):
            container = event.get("container")
            if event.kind in (ev.CACHE_WRITE, ev.CACHE_READ) and container in caches:
                writes, reads = by_container.setdefault(container, ([], []))
                (writes if event.kind == ev.CACHE_WRITE else reads).append(event)
        for container, (writes, reads) in by_container.items():
            hit = _write_before_read(fn, container, writes, reads)
            if hit is not None:
                hits.append(hit)
    return hits


def _write_before_read(fn, container: str, writes: list[Event], reads: list[Event]) -> Hit | None:
    name = container.rsplit(":", 1)[-1]
    for write in writes:
        for read in reads:
            if relation(write, read) != "before":
                continue
            if common_loop(write, read) is not None and TGT in write.taint:
                return event_hit("cache_update_before_score", FLAG, "cache_write_before_read", write,
                                 f"{fn.qualname} writes the token being scored into cache '{name}' (line {write.line}) before "
                                 f"reading the cache for that position (line {read.line})", read)
            if common_loop(write, read) is None and VAL in write.taint:
                return event_hit("cache_update_before_score", REVIEW, "cache_prefilled", write,
                                 f"{fn.qualname} fills cache '{name}' from validation tokens (line {write.line}) before the loop "
                                 f"that reads it (line {read.line}); legal only if each position's entry uses the strict prefix", read)
    return None


@detector("unnormalised_mixture")
def unnormalised_mixture(ctx: Context) -> list[Hit]:
    hits = []
    for fn in ctx.program.functions.values():
        for event in ctx.analysis.events(fn):
            if event.kind == ev.TARGET_COMPARE and event.get("other", frozenset()) & {VAL, TRAIN}:
                via = f" in {' → '.join(event.chain)}" if event.chain else ""
                hits.append(event_hit("unnormalised_mixture", REVIEW, "reads_realised_token", event,
                                      f"{fn.qualname} compares the token being scored with data derived from the token stream "
                                      f"(line {event.line}{via}): a gate or bonus that reads the realised token is legal only if the "
                                      "scored distribution stays normalised over the vocabulary (#886, #1795)"))
    return hits
