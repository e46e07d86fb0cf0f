"""How the simulator writes what HA writes: compact JSON, ISO 8601 timestamps, ULID context ids."""

from __future__ import annotations

import json
import random
import time
from datetime import UTC, datetime
from typing import Any

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
# Two base32 characters per 10 bits: a ULID's random part is then 8 lookups, not 16 shifts.
_PAIRS = tuple(a + b for a in _CROCKFORD for b in _CROCKFORD)
_THREE_DIGITS = tuple(f"{n:03d}" for n in range(1000))
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

quote = json.encoder.encode_basestring  # type: ignore[attr-defined]  # C-accelerated, non-ASCII kept


def dumps(value: Any) -> str:
    """JSON as HA writes it (orjson): compact, UTF-8 kept as is."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def now_us() -> int:
    return time.time_ns() // 1000


def parse_time(value: Any) -> int | None:
    """HA's parse_datetime, as microseconds since the epoch; naive times are taken as UTC."""
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


class IsoStamps:
    """Microsecond epoch integers to HA's ISO 8601 strings, cheaply.

    The text up to the milliseconds is cached, so most calls are one lookup and a concatenation.
    HA uses ``datetime.isoformat()``, which leaves a zero fraction out, and so does this.
    """

    def __init__(self) -> None:
        self._ms = -1
        self._prefix = ""

    def __call__(self, us: int) -> str:
        ms, micro = divmod(us, 1000)
        if ms != self._ms:
            self._ms = ms
            second, milli = divmod(ms, 1000)
            whole = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self._prefix = f"{whole}.{milli:03d}"
        if micro or not self._prefix.endswith(".000"):
            return self._prefix + _THREE_DIGITS[micro] + "+00:00"
        return self._prefix[:-4] + "+00:00"


class Ulids:
    """HA's context ids: ULIDs, 48-bit milliseconds then 80 random bits, Crockford base32."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._ms = -1
        self._prefix = ""

    def __call__(self, us: int) -> str:
        ms = us // 1000
        if ms != self._ms:
            self._ms = ms
            self._prefix = "".join(_CROCKFORD[(ms >> shift) & 31] for shift in range(45, -1, -5))
        r = self._rng.getrandbits(80)
        p = _PAIRS
        return (
            self._prefix
            + p[r >> 70]
            + p[(r >> 60) & 1023]
            + p[(r >> 50) & 1023]
            + p[(r >> 40) & 1023]
            + p[(r >> 30) & 1023]
            + p[(r >> 20) & 1023]
            + p[(r >> 10) & 1023]
            + p[r & 1023]
        )
