"""HA's include/exclude entity filter (homeassistant/helpers/entityfilter.py), same precedence.

Exclude wins over include except where HA says otherwise; the six cases are those of HA's
EntityFilter, summarised in docs/ha-influxdb-parity.md §3.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable
from functools import lru_cache


def _globs(patterns: Iterable[str]) -> re.Pattern[str] | None:
    patterns = list(patterns)
    if not patterns:
        return None
    return re.compile("|".join(f"(?:{fnmatch.translate(p)})" for p in patterns))


class EntityFilter:
    def __init__(
        self,
        *,
        include_domains: Iterable[str] = (),
        include_globs: Iterable[str] = (),
        include_entities: Iterable[str] = (),
        exclude_domains: Iterable[str] = (),
        exclude_globs: Iterable[str] = (),
        exclude_entities: Iterable[str] = (),
    ) -> None:
        self.inc_domains = frozenset(include_domains)
        self.inc_entities = frozenset(e.lower() for e in include_entities)
        self.exc_domains = frozenset(exclude_domains)
        self.exc_entities = frozenset(e.lower() for e in exclude_entities)
        self.inc_globs, self.exc_globs = _globs(include_globs), _globs(exclude_globs)
        self.matches = lru_cache(maxsize=65536)(self._decide)

    @property
    def empty(self) -> bool:
        return not (
            self.inc_domains
            or self.inc_entities
            or self.inc_globs
            or self.exc_domains
            or self.exc_entities
            or self.exc_globs
        )

    def _decide(self, entity_id: str) -> bool:
        domain = entity_id.split(".", 1)[0]
        inc_e, exc_e = entity_id in self.inc_entities, entity_id in self.exc_entities
        inc_d, exc_d = domain in self.inc_domains, domain in self.exc_domains
        inc_g = bool(self.inc_globs and self.inc_globs.match(entity_id))
        exc_g = bool(self.exc_globs and self.exc_globs.match(entity_id))
        have_include = bool(self.inc_domains or self.inc_entities or self.inc_globs)
        have_exclude = bool(self.exc_domains or self.exc_entities or self.exc_globs)
        if not have_include and not have_exclude:  # case 1
            return True
        if not have_exclude:  # case 2
            return inc_e or inc_d or inc_g
        if not have_include:  # case 3
            return not (exc_e or exc_d or exc_g)
        if self.inc_domains or self.inc_globs:  # case 4: exclude domains play no part
            return inc_e or (not exc_e and (inc_g or (inc_d and not exc_g)))
        if self.exc_domains or self.exc_globs:  # case 5
            return inc_e if (exc_d or exc_g) else not exc_e
        return inc_e  # case 6
