"""Small SVG charts drawn on the server for the dashboard: horizontal bars and stacked day columns.

The SVG is inline in the page: it carries no script and no `style` attribute (the CSP allows neither),
only presentation attributes. Every piece of text (a company, channel or rule name comes from the ERP
or the rulebook) is escaped and cut to a bounded length; the number of bars and days is capped.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from markupsafe import Markup, escape

MAX_BARS = 15
MAX_DAYS = 92
MAX_LABEL = 28
BAR_COLOR = "#3b6ea8"
ACTION_COLORS = {"allow": "#2f855a", "review": "#b7791f", "hold": "#c05621", "block": "#c53030"}


def _label(text: object) -> str:
    value = str(text)
    return value if len(value) <= MAX_LABEL else value[: MAX_LABEL - 1] + "…"


def _number(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.2f}"


def bar_chart(
    chart_id: str, title: str, items: Sequence[tuple[str, float]], *, unit: str = "", ordered: bool = False
) -> Markup:
    """One horizontal bar per (label, value), largest first (or in the given order), at most MAX_BARS."""
    rows = list(items if ordered else sorted(items, key=lambda kv: -kv[1]))[:MAX_BARS]
    width, label_w, bar_h, top = 460, 170, 18, 26
    height = top + max(len(rows), 1) * (bar_h + 6) + 6
    peak = max((v for _, v in rows), default=0) or 1
    parts = [
        f'<svg class="chart" id="{escape(chart_id)}" role="img" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
        f'<text x="0" y="16" font-size="13" font-weight="600" fill="#1d2430">{escape(title)}</text>',
    ]
    if not rows:
        parts.append(f'<text x="0" y="{top + 14}" font-size="12" fill="#6b7280">no data in this range</text>')
    for index, (name, value) in enumerate(rows):
        y = top + index * (bar_h + 6)
        span = max((width - label_w - 70) * value / peak, 1 if value else 0)
        parts.append(
            f'<g class="bar"><text x="{label_w - 6}" y="{y + 13}" font-size="12" text-anchor="end" '
            f'fill="#1d2430">{escape(_label(name))}</text>'
            f'<rect x="{label_w}" y="{y}" width="{span:.1f}" height="{bar_h}" fill="{BAR_COLOR}"/>'
            f'<text x="{label_w + span + 4:.1f}" y="{y + 13}" font-size="12" fill="#1d2430">'
            f"{escape(_number(value))}{escape(unit)}</text></g>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def daily_columns(chart_id: str, title: str, days: Sequence[str], series: Mapping[str, Sequence[int]]) -> Markup:
    """Stacked columns: one per day, one colour per series (the decisions' actions), with a legend."""
    days = list(days)[-MAX_DAYS:]
    offset = len(next(iter(series.values()), [])) - len(days)
    width, left, top, plot_h = 560, 40, 40, 150
    column_w = max((width - left - 10) / max(len(days), 1), 2)
    totals = [sum(values[offset + i] for values in series.values()) for i in range(len(days))]
    peak = max(totals, default=0) or 1
    height = top + plot_h + 24
    parts = [
        f'<svg class="chart" id="{escape(chart_id)}" role="img" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
        f'<text x="0" y="16" font-size="13" font-weight="600" fill="#1d2430">{escape(title)}</text>',
        f'<text x="{left - 4}" y="{top + 8}" font-size="10" text-anchor="end" fill="#6b7280">{peak:,}</text>',
        f'<line x1="{left}" y1="{top + plot_h}" x2="{width - 10}" y2="{top + plot_h}" stroke="#d9dde3"/>',
    ]
    for index, name in enumerate(series):
        key_x = left + index * 80
        color = ACTION_COLORS.get(name, BAR_COLOR)
        parts.append(
            f'<rect x="{key_x}" y="22" width="10" height="10" fill="{color}"/>'
            f'<text x="{key_x + 14}" y="31" font-size="11" fill="#1d2430">{escape(_label(name))}</text>'
        )
    for i, day in enumerate(days):
        x, base = left + i * column_w, float(top + plot_h)
        for name, values in series.items():
            value = values[offset + i]
            if not value:
                continue
            h = max(plot_h * value / peak, 1)
            base -= h
            tip = f"{day} {name}: {value:,}"
            parts.append(
                f'<rect x="{x + 1:.1f}" y="{base:.1f}" width="{max(column_w - 2, 1):.1f}" height="{h:.1f}" '
                f'fill="{ACTION_COLORS.get(name, BAR_COLOR)}"><title>{escape(tip)}</title></rect>'
            )
    if days:
        parts.append(f'<text x="{left}" y="{height - 6}" font-size="10" fill="#6b7280">{escape(days[0])}</text>')
        parts.append(f'<text x="{width - 10}" y="{height - 6}" font-size="10" text-anchor="end" fill="#6b7280">'
                     f"{escape(days[-1])}</text>")  # fmt: skip
    else:
        parts.append(f'<text x="{left}" y="{top + 20}" font-size="12" fill="#6b7280">no decisions in this range</text>')
    parts.append("</svg>")
    return Markup("".join(parts))
