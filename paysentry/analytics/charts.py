"""Charts for the reports, drawn with matplotlib's Agg backend (no display, no browser needed).

Every chart is written as PNG and SVG and returned as an SVG `data:` URI for the HTML report: an image
loaded that way cannot run script, whatever text (a vendor or bank name) ended up in it. Label text is
never parsed as mathtext (`$` in a name is just a character) and is cut to a bounded length.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
from matplotlib import pyplot as plt  # noqa: E402  (after choosing the backend)

_RC: Any = {"text.parse_math": False, "svg.hashsalt": "paysentry", "svg.fonttype": "path", "font.size": 9}
MAX_BARS = 20
MAX_LABEL = 24


@dataclass(frozen=True)
class Chart:
    name: str
    title: str
    svg_data_uri: str


def _label(text: Any) -> str:
    value = str(text)
    return value if len(value) <= MAX_LABEL else value[: MAX_LABEL - 1] + "…"


def _save(fig: Any, out_dir: Path, name: str, title: str) -> Chart:
    out_dir.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(out_dir / f"{name}.png", format="png", dpi=110)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="svg", metadata={"Date": None})
    plt.close(fig)
    svg = buffer.getvalue()
    (out_dir / f"{name}.svg").write_bytes(svg)
    return Chart(name, title, "data:image/svg+xml;base64," + base64.b64encode(svg).decode("ascii"))


def bar_chart(
    out_dir: Path, name: str, title: str, labels: Sequence[Any], values: Sequence[float], *, ylabel: str = ""
) -> Chart:
    """One bar per label (at most MAX_BARS, the largest values kept)."""
    pairs = sorted(zip(labels, values, strict=True), key=lambda kv: -kv[1])[:MAX_BARS]
    with matplotlib.rc_context(_RC):
        fig, ax = plt.subplots(figsize=(6.4, 3.2))
        ax.bar([_label(k) for k, _ in pairs], [v for _, v in pairs], color="#3b6ea8")
        ax.set_title(_label(title) if len(title) > 80 else title)
        ax.set_ylabel(ylabel)
        ax.tick_params(axis="x", labelrotation=30)
        for tick in ax.get_xticklabels():
            tick.set_horizontalalignment("right")
        return _save(fig, out_dir, name, title)


def grouped_bar_chart(
    out_dir: Path,
    name: str,
    title: str,
    groups: Sequence[str],
    series: Mapping[str, Sequence[float]],
    *,
    ylabel: str = "",
) -> Chart:
    """Bars of several series (e.g. p50, p90, p99) side by side for each group (e.g. a stage)."""
    groups = [_label(g) for g in groups[:MAX_BARS]]
    width = 0.8 / max(len(series), 1)
    colors = ("#7fa7d1", "#3b6ea8", "#1d3b5e", "#a84b3b")
    with matplotlib.rc_context(_RC):
        fig, ax = plt.subplots(figsize=(6.4, 3.2))
        for index, (label, values) in enumerate(series.items()):
            xs = [i + index * width for i in range(len(groups))]
            ax.bar(xs, list(values)[: len(groups)], width=width, label=_label(label), color=colors[index % len(colors)])
        ax.set_xticks([i + width * (len(series) - 1) / 2 for i in range(len(groups))], groups)
        ax.tick_params(axis="x", labelrotation=20)
        ax.set_title(title)
        ax.set_ylabel(ylabel)
        ax.legend()
        return _save(fig, out_dir, name, title)


def kpi_charts(kpis: dict[str, Any], out_dir: Path) -> list[Chart]:
    """The KPI report's charts: payments by company, processing time per stage, failure rate and fee
    share by channel."""
    charts = []
    companies = kpis["by"]["company"]
    if companies:
        charts.append(
            bar_chart(
                out_dir,
                "payments_by_company",
                "Payments released by company",
                list(companies),
                [v["payments"] for v in companies.values()],
                ylabel="payments",
            )
        )
    stages = {k: v for k, v in kpis["processing_seconds"].items() if v["count"]}
    if stages:
        series = {q: [(v[q] or 0) / 3600 for v in stages.values()] for q in ("p50", "p90", "p99")}
        charts.append(
            grouped_bar_chart(
                out_dir, "processing_hours", "Processing time per stage (hours)", list(stages), series, ylabel="hours"
            )
        )
    by_channel = {k: v for k, v in kpis["failure_rate"]["by_channel"].items() if v["rate"] is not None}
    if by_channel:
        charts.append(
            bar_chart(
                out_dir,
                "failure_rate_by_channel",
                "Failure and return rate by channel (%)",
                list(by_channel),
                [100 * v["rate"] for v in by_channel.values()],
                ylabel="%",
            )
        )
    shares = {}
    for channel, fees in kpis["fees_by_channel"].items():
        values = [v for v in fees["share_of_amount"].values() if v is not None]
        if values:
            shares[channel] = 100 * max(values)
    if shares:
        charts.append(
            bar_chart(
                out_dir,
                "fee_share_by_channel",
                "Fees as a share of amount by channel (%)",
                list(shares),
                list(shares.values()),
                ylabel="%",
            )
        )
    return charts
