"""Time conversions shared by every source: HA's ISO 8601 strings and float seconds to the
integer nanoseconds an event carries, and back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


class InvalidTime(ValueError):
    """A timestamp that is not one HA could have written."""


def iso_to_ns(value: Any) -> int:
    """HA's ISO 8601 timestamps (microsecond resolution) to integer nanoseconds, exactly."""
    if not isinstance(value, str):
        raise InvalidTime(f"timestamp is not a string: {value!r:.80}")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidTime(f"timestamp is not ISO 8601: {value!r:.80}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    # Integer arithmetic: a float timestamp would round away the microseconds.
    return ((moment - _EPOCH) // _MICROSECOND) * 1000


def ns_to_iso(ns: int) -> str:
    """Nanoseconds to HA's ISO 8601 form (UTC, microseconds)."""
    return (_EPOCH + timedelta(microseconds=ns // 1000)).isoformat(timespec="microseconds")


def seconds_to_ns(value: float) -> int:
    # HA's float seconds carry microseconds; a float64 near 1.7e9 s is exact to ~0.24 µs, so
    # rounding to the microsecond recovers the exact last_updated the live event had.
    return round(value * 1_000_000) * 1000
