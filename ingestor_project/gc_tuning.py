"""Garbage-collector settings for the hot processes (listeners and worker children).

Decoding a coalesced WebSocket frame or a 2,000-event task body creates tens of thousands of
dicts and lists in one go; with Python's default threshold (700 allocations) the young
generation is collected dozens of times per frame, and every few of those the older ones,
walking every live object (Django, Celery, the pending batches) again (the cost is in
docs/benchmarks.md). Our data is acyclic and freed by reference counting, so collecting less
often costs little memory:

- the start-up objects (modules, settings, the app) are frozen out of every collection;
- the young generation is collected every GC_THRESHOLD allocations instead of 700.
"""

from __future__ import annotations

import gc


def tune_gc(threshold: int) -> None:
    """Freeze what start-up built and raise the young-generation threshold (0: leave it)."""
    if threshold <= 0:
        return
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(threshold, older, oldest)
