"""One self-contained HTML page per report: inline CSS, charts as SVG `data:` images, no script, nothing
loaded from elsewhere (a Content-Security-Policy says so to the browser too). Every value is escaped by
Jinja2's autoescaping; tables are cut to `MAX_ROWS` rows with a visible note.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from jinja2 import Environment, select_autoescape

from paysentry.analytics.charts import Chart

MAX_ROWS = 200

_TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data:; style-src 'unsafe-inline'">
<title>{{ title }}</title>
<style>
body { font-family: system-ui, sans-serif; margin: 2rem; color: #1d2733; }
h1 { margin-bottom: 0.2rem; } .sub { color: #5b6b7b; margin-top: 0; }
.headline { display: flex; flex-wrap: wrap; gap: 1rem; margin: 1rem 0; }
.card { border: 1px solid #d5dde5; border-radius: 6px; padding: 0.6rem 1rem; min-width: 10rem; }
.card .v { font-size: 1.3rem; font-weight: 600; } .card .k { color: #5b6b7b; font-size: 0.85rem; }
.charts { display: flex; flex-wrap: wrap; gap: 1rem; } .charts figure { margin: 0; flex: 1 1 30rem; max-width: 48rem; }
.charts img { width: 100%; border: 1px solid #eef2f5; }
table { border-collapse: collapse; margin: 0.5rem 0 1.5rem; font-size: 0.9rem; }
th, td { border: 1px solid #d5dde5; padding: 0.25rem 0.6rem; text-align: left; vertical-align: top; }
th { background: #f3f6f9; } td.n { text-align: right; font-variant-numeric: tabular-nums; }
.note { color: #5b6b7b; font-size: 0.85rem; }
</style>
</head>
<body>
<h1>{{ title }}</h1>
<p class="sub">{{ subtitle }}</p>
<div class="headline">
{% for key, value in headline %}<div class="card"><div class="v">{{ value }}</div><div class="k">{{ key }}</div></div>
{% endfor %}</div>
{% if charts %}<div class="charts">
{% for chart in charts %}<figure><img src="{{ chart.svg_data_uri }}" alt="{{ chart.title }}"></figure>
{% endfor %}</div>{% endif %}
{% for table in tables %}<h2>{{ table.title }}</h2>
{% if table.note %}<p class="note">{{ table.note }}</p>{% endif %}
{% if table.rows %}<table><thead><tr>{% for c in table.columns %}<th>{{ c }}</th>{% endfor %}</tr></thead><tbody>
{% for row in table.shown() %}<tr>{% for cell in row %}
<td{% if cell is number %} class="n"{% endif %}>{{ cell if cell is not none else "" }}</td>{% endfor %}</tr>
{% endfor %}</tbody></table>
{% if table.hidden() %}<p class="note">{{ table.hidden() }} more rows in the CSV / JSON files.</p>{% endif %}
{% else %}<p class="note">nothing in this period</p>{% endif %}
{% endfor %}
</body>
</html>
"""

_ENV = Environment(autoescape=select_autoescape(default=True, default_for_string=True))


@dataclass
class Table:
    title: str
    columns: Sequence[str]
    rows: Sequence[Sequence[Any]] = field(default_factory=list)
    note: str = ""

    def shown(self) -> Sequence[Sequence[Any]]:
        return self.rows[:MAX_ROWS]

    def hidden(self) -> int:
        return max(0, len(self.rows) - MAX_ROWS)


def render_page(
    title: str, subtitle: str, headline: Sequence[tuple[str, Any]], charts: Sequence[Chart], tables: Sequence[Table]
) -> str:
    """The page's HTML; the only markup in it comes from the template."""
    template = _ENV.from_string(_TEMPLATE)
    return template.render(title=title, subtitle=subtitle, headline=headline, charts=charts, tables=tables)


def data_uri_is_image(uri: str) -> bool:
    """Charts are only ever embedded as base64 SVG images (what the page's policy allows)."""
    return uri.startswith("data:image/svg+xml;base64,")
