"""A claim's per-seed values against its threshold, as a small static SVG (no script)."""

from __future__ import annotations

import html
from typing import Any

from attnkit.record import VERDICT_COLOURS

WIDTH, HEIGHT, PAD = 170, 30, 8


def strip_svg(per_seed: list[dict[str, Any]], threshold: float | None) -> str:
    """One dot per seed on a horizontal axis (colour = that seed's verdict), the threshold as a
    dashed line, and the axis ends labelled. "" when no seed recorded a value."""
    points = [(p["seed"], p["value"], p["verdict"]) for p in per_seed if p.get("value") is not None]
    if not points:
        return ""
    values = [v for _, v, _ in points] + ([threshold] if threshold is not None else [])
    low, high = min(values), max(values)
    span = high - low or max(abs(high), 1.0) * 0.1
    low, high = low - 0.08 * span, high + 0.08 * span

    def x(value: float) -> float:
        return PAD + (value - low) / (high - low) * (WIDTH - 2 * PAD)

    parts = [
        f'<svg class="strip" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" '
        'xmlns="http://www.w3.org/2000/svg" role="img">',
        f"<title>{html.escape(_describe(points, threshold))}</title>",
        f'<line x1="{PAD}" y1="14" x2="{WIDTH - PAD}" y2="14" stroke="#d0d7de"/>',
    ]
    if threshold is not None:
        tx = x(threshold)
        parts.append(
            f'<line x1="{tx:.1f}" y1="3" x2="{tx:.1f}" y2="25" stroke="#57606a" '
            'stroke-dasharray="3,2"/>'
        )
    for _, value, verdict in points:
        colour = VERDICT_COLOURS.get(verdict, "#57606a")
        parts.append(
            f'<circle cx="{x(value):.1f}" cy="14" r="3.5" fill="{colour}" fill-opacity="0.75"/>'
        )
    parts.append(
        f'<text x="{PAD}" y="{HEIGHT - 1}" font-size="8" fill="#656d76">{low:.3g}</text>'
        f'<text x="{WIDTH - PAD}" y="{HEIGHT - 1}" font-size="8" fill="#656d76" '
        f'text-anchor="end">{high:.3g}</text></svg>'
    )
    return "".join(parts)


def _describe(points: list[tuple[int, float, str]], threshold: float | None) -> str:
    seeds = ", ".join(f"seed {s}: {v:.3g} ({verdict})" for s, v, verdict in points)
    return seeds + (f"; threshold {threshold:.3g}" if threshold is not None else "")
