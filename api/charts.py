"""Tiny server-side SVG line charts: no JavaScript, no CDN, nothing to break."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from html import escape

from markupsafe import Markup

WIDTH, HEIGHT, PAD = 640, 180, 32
COLOURS = ("#2b6cb0", "#c53030", "#2f855a", "#b7791f")


def line_chart(
    title: str, times: Sequence[float], series: dict[str, Sequence[float]], unit: str = ""
) -> Markup:
    """An SVG chart of ``series`` (name → values) over ``times`` (epoch seconds)."""
    if len(times) < 2 or not series:
        return Markup(f'<p class="nodata">{escape(title)}: no data yet</p>')
    t0, t1 = min(times), max(times)
    top = max((max(values, default=0) for values in series.values()), default=0) or 1.0

    def x(t: float) -> float:
        return PAD + (t - t0) / ((t1 - t0) or 1) * (WIDTH - 2 * PAD)

    def y(v: float) -> float:
        return HEIGHT - PAD - v / top * (HEIGHT - 2 * PAD)

    parts = [
        f'<svg class="chart" role="img" aria-label="{escape(title)}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" xmlns="http://www.w3.org/2000/svg">',
        f'<text x="{PAD}" y="16" class="title">{escape(title)}</text>',
        f'<line x1="{PAD}" y1="{HEIGHT - PAD}" x2="{WIDTH - PAD}" y2="{HEIGHT - PAD}" '
        'class="axis"/>',
        f'<text x="{WIDTH - PAD}" y="16" text-anchor="end">max {top:,.1f}{escape(unit)}</text>',
        f'<text x="{PAD}" y="{HEIGHT - 8}">{_hhmm(t0)}</text>',
        f'<text x="{WIDTH - PAD}" y="{HEIGHT - 8}" text-anchor="end">{_hhmm(t1)}</text>',
    ]
    for i, (name, values) in enumerate(series.items()):
        colour = COLOURS[i % len(COLOURS)]
        points = " ".join(f"{x(t):.1f},{y(v):.1f}" for t, v in zip(times, values, strict=False))
        parts.append(
            f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{points}">'
            f"<title>{escape(name)}</title></polyline>"
        )
        parts.append(  # legend, bottom centre, between the time labels
            f'<text x="{WIDTH // 2 - 60 + 120 * i}" y="{HEIGHT - 8}" '
            f'class="legend s{i % len(COLOURS)}">&#9632; {escape(name)}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def _hhmm(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%H:%M UTC")
