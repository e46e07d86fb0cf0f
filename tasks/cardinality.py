"""A cap on distinct values per tag key, so one chatty attribute written as a tag cannot blow
up InfluxDB's series index (every new tag value is a new series, kept in memory forever)."""

from __future__ import annotations

import structlog

from ingestor_project import metrics
from tasks.schema import UNCAPPED_TAGS

log = structlog.get_logger(__name__)

OVERFLOW_VALUE = "_other"


class TagCardinalityGuard:
    """Per process: values seen per key; past the cap, new values become ``_other``.

    Each worker process keeps its own memory, so the cap is per process: N processes may admit
    up to N times the cap in the worst case, which is still bounded.
    """

    def __init__(self, max_values: int) -> None:
        self.max_values = max_values
        self.seen: dict[str, set[str]] = {}
        self.capped: set[str] = set()
        self.overflowed = 0

    def __call__(self, key: str, value: str) -> str:
        if key in UNCAPPED_TAGS or self.max_values <= 0:
            return value
        values = self.seen.setdefault(key, set())
        if value in values:
            return value
        if len(values) < self.max_values:
            values.add(value)
            return value
        self.overflowed += 1
        metrics.TAGS_CAPPED.inc()
        if key not in self.capped:
            self.capped.add(key)
            log.warning(
                "tag_cardinality_capped",
                tag=key,
                max_values=self.max_values,
                replacement=OVERFLOW_VALUE,
                category="cardinality",
            )
        return OVERFLOW_VALUE
