"""The one reconnect policy: capped exponential backoff with full jitter, reset after success."""

from __future__ import annotations

import random


class Backoff:
    # The first few failures are routine (a broker or HA restart takes a few seconds and costs
    # two or three attempts); after this many in a row something is really down: log ERROR.
    WARN_ATTEMPTS = 5

    def __init__(
        self,
        initial: float = 0.5,
        maximum: float = 60.0,
        factor: float = 2.0,
        rng: random.Random | None = None,
    ) -> None:
        self.initial, self.maximum, self.factor = initial, maximum, factor
        self.failures = 0
        self._rng = rng or random.Random()

    def next_delay(self) -> float:
        """Record one failure and return how long to wait before the next attempt."""
        ceiling = min(self.maximum, self.initial * self.factor**self.failures)
        self.failures += 1
        # Jitter between half and the whole ceiling: many clients that lost the same server
        # do not all come back in the same instant, and the wait still grows.
        return self._rng.uniform(ceiling / 2, ceiling)

    def reset(self) -> None:
        self.failures = 0

    @property
    def serious(self) -> bool:
        return self.failures > self.WARN_ATTEMPTS
