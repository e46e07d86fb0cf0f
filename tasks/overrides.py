"""Per-entity configuration, as HA's ``influxdb`` integration takes it: ``component_config``,
``component_config_domain`` and ``component_config_glob``."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

# Entities remembered per EntityOverrides; cleared when full, so odd data cannot grow it.
MAX_MEMO_ENTITIES = 65_536


def bounded_put(memo: dict, key: Any, value: Any, limit: int) -> None:
    """memo[key] = value, emptying the memo first when it holds ``limit`` entries."""
    if len(memo) >= limit:
        memo.clear()
    memo[key] = value


@dataclass(frozen=True)
class EntityOverrides:
    """HA's component_config / _domain / _glob: per-key merge, domain < glob < entity."""

    entities: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    domains: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    globs: tuple[tuple[str, Mapping[str, Any]], ...] = ()
    _merged: dict[str, dict[str, Any]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    @cached_property
    def _patterns(self) -> tuple[tuple[re.Pattern[str], Mapping[str, Any]], ...]:
        return tuple((re.compile(fnmatch.translate(g)), cfg) for g, cfg in self.globs)

    def get(self, entity_id: str) -> dict[str, Any]:
        """The merged configuration of one entity (shared: do not change it)."""
        merged = self._merged.get(entity_id)
        if merged is None:
            merged = self._lookup(entity_id)
            bounded_put(self._merged, entity_id, merged, MAX_MEMO_ENTITIES)
        return merged

    def _lookup(self, entity_id: str) -> dict[str, Any]:
        merged: dict[str, Any] = {}
        merged.update(self.domains.get(entity_id.split(".", 1)[0], {}))
        for pattern, cfg in self._patterns:
            if pattern.match(entity_id):
                merged.update(cfg)
        merged.update(self.entities.get(entity_id, {}))
        return merged
