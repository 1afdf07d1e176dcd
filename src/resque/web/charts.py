"""Charts drawn on the server as small SVG documents: no JavaScript library, no CDN.

The pages show them as ``<img>`` elements, which the live view refreshes by changing their
``src``: an SVG loaded as an image can run no script, and every label that came from Redis (a
queue name) is XML-escaped here anyway. Colours are presentation attributes, so the strict
Content-Security-Policy (no inline styles) holds for these documents too.
"""

from __future__ import annotations

import html
import math
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from resque.metrics import TOP_QUEUES, Sample

WIDTH, HEIGHT = 640, 220
LEFT, RIGHT, TOP, BOTTOM = 52, 14, 40, 26
PALETTE = ("#2563eb", "#dc2626", "#059669", "#d97706", "#7c3aed", "#0891b2", "#db2777")
GRID, AXIS, TEXT, MUTED = "#e5e7eb", "#9ca3af", "#111827", "#6b7280"
FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif"
WINDOWS = {"15m": 900, "1h": 3600, "6h": 6 * 3600, "24h": 86400}
_XML_BAD = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")

Point = tuple[float, float | None]  # (time, value); None breaks the line


@dataclass
class Series:
    name: str
    color: str
    points: list[Point]
    area: bool = False

    @property
    def last(self) -> float | None:
        return next((v for _, v in reversed(self.points) if v is not None), None)


def xml(text: str) -> str:
    """Text safe inside an SVG (XML) document, attacker-chosen queue names included."""
    return html.escape(_XML_BAD.sub("\ufffd", text), quote=True)


def throughput(samples: Sequence[Sample], max_gap: float) -> list[Series]:
    """Jobs processed and failed per minute, from the counters' differences."""
    processed: list[Point] = []
    failed: list[Point] = []
    for before, after in zip(samples, samples[1:], strict=False):
        elapsed = after.t - before.t
        if elapsed <= 0:
            continue
        gap = elapsed > max_gap
        done = after.processed - before.processed
        lost = after.failed - before.failed
        processed.append((after.t, None if gap or done < 0 else done * 60 / elapsed))
        failed.append((after.t, None if gap or lost < 0 else lost * 60 / elapsed))
    return [
        Series("processed/min", PALETTE[0], processed, area=True),
        Series("failed/min", PALETTE[1], failed),
    ]


def depth(samples: Sequence[Sample], max_gap: float, lines: int = 5) -> list[Series]:
    """Jobs pending in all, and in the queues that were longest during the window.

    A sample lists only the ``TOP_QUEUES`` longest queues; a queue missing from a full list
    is unknown at that moment (a gap), from a shorter list it was empty (0).
    """
    peaks: dict[str, int] = {}
    for sample in samples:
        for name, length in sample.queues:
            peaks[name] = max(peaks.get(name, 0), length)
    chosen = sorted(peaks, key=lambda name: (-peaks[name], name))[:lines]
    total = Series("all queues", TEXT, _with_gaps(
        [(s.t, float(s.pending)) for s in samples], max_gap))
    found = [total]
    for number, name in enumerate(chosen):
        points: list[Point] = []
        for sample in samples:
            lengths = dict(sample.queues)
            if name in lengths:
                points.append((sample.t, float(lengths[name])))
            else:
                points.append((sample.t, None if len(lengths) >= TOP_QUEUES else 0.0))
        color = PALETTE[(number + 2) % len(PALETTE)]
        found.append(Series(name, color, _with_gaps(points, max_gap)))
    return found


def _with_gaps(points: list[Point], max_gap: float) -> list[Point]:
    """Insert a break where samples are further apart than ``max_gap`` seconds."""
    result: list[Point] = []
    for point in points:
        if result and point[0] - result[-1][0] > max_gap:
            result.append((result[-1][0] + max_gap / 2, None))
        result.append(point)
    return result


def nice_step(value: float, steps: int = 4) -> float:
    """A grid step (1, 2, 2.5 or 5 times a power of ten) so ``steps`` steps cover ``value``."""
    if value <= 0:
        return 1.0
    raw = value / steps
    power = 10 ** math.floor(math.log10(raw))
    for step in (1, 2, 2.5, 5, 10):
        if raw <= step * power:
            return float(step * power)
    return float(10 * power)


def _number(value: float) -> str:
    if value >= 1000:
        thousands = value / 1000
        return f"{thousands:g}k" if thousands == round(thousands, 1) else f"{thousands:.1f}k"
    if value == int(value):
        return str(int(value))
    return f"{value:.2f}".rstrip("0")


def _time_ticks(start: float, end: float) -> list[float]:
    span = end - start
    step = next((s for s in (60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600)
                 if span / s <= 6), 43200)
    offset = time.localtime(start).tm_gmtoff
    first = math.ceil((start + offset) / step) * step - offset
    return [first + i * step for i in range(int((end - first) // step) + 1)]


def render(title: str, series: Sequence[Series], start: float, end: float,
           empty: str = "No samples yet") -> str:
    """A line chart as a standalone SVG document."""
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    values = [v for s in series for _, v in s.points if v is not None]
    step = nice_step(max(values, default=0.0))
    ceiling = 4 * step
    span = max(end - start, 1.0)

    def x(t: float) -> float:
        return LEFT + (t - start) / span * plot_w

    def y(v: float) -> float:
        return TOP + plot_h - v / ceiling * plot_h

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'width="{WIDTH}" height="{HEIGHT}" font-family="{xml(FONT)}" font-size="11">',
        f"<title>{xml(title)}</title>",
        f'<rect x="0" y="0" width="{WIDTH}" height="{HEIGHT}" fill="#ffffff"/>',
        f'<text x="{LEFT}" y="16" font-size="13" font-weight="600" fill="{TEXT}">'
        f"{xml(title)}</text>",
        *_legend(series),
    ]
    for i in range(5):
        value = step * i
        at = y(value)
        out.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{at:.1f}" y2="{at:.1f}" '
                   f'stroke="{GRID}"/>')
        out.append(f'<text x="{LEFT - 6}" y="{at + 4:.1f}" text-anchor="end" fill="{MUTED}">'
                   f"{_number(value)}</text>")
    for tick in _time_ticks(start, end):
        at = x(tick)
        out.append(f'<line x1="{at:.1f}" x2="{at:.1f}" y1="{TOP}" y2="{TOP + plot_h}" '
                   f'stroke="{GRID}"/>')
        out.append(f'<text x="{at:.1f}" y="{HEIGHT - 8}" text-anchor="middle" fill="{MUTED}">'
                   f'{time.strftime("%H:%M", time.localtime(tick))}</text>')
    out.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{TOP + plot_h}" '
               f'y2="{TOP + plot_h}" stroke="{AXIS}"/>')
    for item in reversed(series):  # the first series is drawn last, on top
        out += _lines(item, start, x, y)
    if not values:
        out.append(f'<text x="{LEFT + plot_w / 2}" y="{TOP + plot_h / 2}" text-anchor="middle" '
                   f'fill="{MUTED}">{xml(empty)}</text>')
    out.append("</svg>")
    return "\n".join(out)


def _legend(series: Sequence[Series]) -> list[str]:
    out = []
    legend_x = float(LEFT)
    for item in series:
        last = item.last
        label = f"{item.name} {_number(last)}" if last is not None else item.name
        label = label if len(label) <= 40 else label[:39] + "\u2026"
        out.append(f'<rect x="{legend_x:.0f}" y="24" width="10" height="10" rx="2" '
                   f'fill="{item.color}"/>')
        out.append(f'<text x="{legend_x + 14:.0f}" y="33" fill="{MUTED}">{xml(label)}</text>')
        legend_x += 24 + 6.2 * len(label)
        if legend_x > WIDTH - 80:
            break
    return out


def _lines(item: Series, start: float, x: Callable[[float], float],
           y: Callable[[float], float]) -> list[str]:
    """One series: a polyline per unbroken segment (a dot for a lone point), filled below
    when it is an area."""
    out = []
    base = HEIGHT - BOTTOM
    for segment in _segments(item.points, start):
        coords = " ".join(f"{x(t):.1f},{y(v):.1f}" for t, v in segment)
        if item.area and len(segment) > 1:
            out.append(f'<polygon points="{x(segment[0][0]):.1f},{base} {coords} '
                       f'{x(segment[-1][0]):.1f},{base}" fill="{item.color}" '
                       f'fill-opacity="0.12"/>')
        if len(segment) == 1:
            t, v = segment[0]
            out.append(f'<circle cx="{x(t):.1f}" cy="{y(v):.1f}" r="2" fill="{item.color}"/>')
        else:
            out.append(f'<polyline points="{coords}" fill="none" stroke="{item.color}" '
                       f'stroke-width="2" stroke-linejoin="round"/>')
    return out


def _segments(points: Sequence[Point], start: float) -> list[list[tuple[float, float]]]:
    segments: list[list[tuple[float, float]]] = [[]]
    for t, v in points:
        if v is None:
            if segments[-1]:
                segments.append([])
        elif t >= start:
            segments[-1].append((t, v))
    return [segment for segment in segments if segment]
