"""Small line charts as inline SVG, drawn on the server: no JavaScript, nothing fetched."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

WIDTH, HEIGHT = 320, 90
# Room at the top so the highest point's line is not cut by the edge.
PAD = 4


@dataclass(frozen=True)
class Line:
    label: str
    css_class: str
    segments: list[str]  # SVG polyline "x,y x,y" strings, split where a value is missing
    latest: str


@dataclass(frozen=True)
class Chart:
    title: str
    unit: str
    top: str  # the value the chart's top edge stands for
    start: datetime | None
    end: datetime | None
    lines: list[Line] = field(default_factory=list)
    width: int = WIDTH
    height: int = HEIGHT

    @property
    def empty(self) -> bool:
        return not any(line.segments for line in self.lines)


def chart(
    title: str,
    unit: str,
    times: list[datetime],
    series: dict[tuple[str, str], list[float | None]],
    fmt: str = "{:.1f}",
) -> Chart:
    """One chart of several series over the same times; ``series`` keys are (label, css class)."""
    values = [v for points in series.values() for v in points if v is not None]
    # 10 % headroom: a line at the very top edge reads as clipped.
    top = _nice_ceiling(max(values, default=0.0) * 1.1)
    lines = [
        Line(label, css, _segments(times, points, top), _latest(points, fmt))
        for (label, css), points in series.items()
    ]
    start, end = (times[0], times[-1]) if times else (None, None)
    return Chart(title, unit, f"{top:g}", start, end, lines)


def _segments(times: list[datetime], points: list[float | None], top: float) -> list[str]:
    if len(times) < 2:
        return _close([], [f"{WIDTH / 2:.1f},{_y(p, top):.1f}" for p in points if p is not None])
    span = (times[-1] - times[0]).total_seconds() or 1.0
    segments, current = [], []
    for moment, value in zip(times, points, strict=True):
        if value is None:
            segments, current = _close(segments, current), []
            continue
        x = (moment - times[0]).total_seconds() / span * WIDTH
        current.append(f"{x:.1f},{_y(value, top):.1f}")
    return _close(segments, current)


def _close(segments: list[str], current: list[str]) -> list[str]:
    if len(current) == 1:  # a lone value between gaps: a short dash, so it still shows
        x, y = (float(part) for part in current[0].split(","))
        current = [f"{max(0.0, x - 2):.1f},{y:.1f}", f"{min(WIDTH, x + 2):.1f},{y:.1f}"]
    return [*segments, " ".join(current)] if current else segments


def _y(value: float, top: float) -> float:
    usable = HEIGHT - 2 * PAD
    return HEIGHT - PAD - (value / top * usable if top else 0.0)


def _latest(points: list[float | None], fmt: str) -> str:
    known = [p for p in points if p is not None]
    return fmt.format(known[-1]) if known else "–"


def _nice_ceiling(value: float) -> float:
    """1, 2 or 5 times a power of ten, at or above value: a scale a reader takes in at a glance."""
    if value <= 0:
        return 1.0
    scale = 10 ** (len(str(int(value))) - 1) if value >= 1 else _small_scale(value)
    for step in (1, 2, 5, 10):
        if step * scale >= value:
            return float(step * scale)
    return float(10 * scale)


def _small_scale(value: float) -> float:
    scale = 1.0
    while scale / 10 >= value:
        scale /= 10
    return scale / 10 if scale > value else scale
