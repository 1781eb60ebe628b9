"""The dashboard page (`/dashboard`, any logged-in role) and the panel it polls (`/dashboard/panel`).

The page holds the filters and a panel; desk.js fetches the panel again every `refresh` seconds with
the same query and swaps it in (no inline script; the fragment is rendered and escaped here). The
platform's KPIs come from an analytics KPI file when one is configured (`PAYSENTRY_DESK_KPIS_FILE`),
read again only when the file changes, and refused with a reason when it is too large or not one.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import Response
from pydantic import ValidationError
from sqlalchemy.orm import Session

from paysentry.desk import svgcharts
from paysentry.desk.dashboard import DashboardFilters, desk_kpis, filter_options
from paysentry.desk.deps import db_session, render
from paysentry.desk.web import Current

dashboard_router = APIRouter()
DB = Annotated[Session, Depends(db_session)]
MAX_KPI_FILE_BYTES = 16 * 1024 * 1024
KPI_SCHEMA = "paysentry.kpis/1"
_cache: dict[Path, tuple[tuple[int, int], dict[str, Any]]] = {}
_cache_lock = threading.Lock()


def filters_of(request: Request) -> DashboardFilters:
    try:
        return DashboardFilters.from_query(dict(request.query_params))
    except ValidationError:
        raise HTTPException(422, "a dashboard filter value is not valid") from None


def _summarise(kpis: Any) -> dict[str, Any]:
    from paysentry.analytics.kpi_report import headline

    if not isinstance(kpis, dict) or kpis.get("schema") != KPI_SCHEMA:
        raise ValueError(f"not a KPI file (schema {KPI_SCHEMA} expected)")
    by_channel = kpis["failure_rate"]["by_channel"]
    return {
        "error": None,
        "period": kpis["period"],
        "headline": [[str(name), str(value)] for name, value in headline(kpis)],
        "failure_rate_by_channel": {str(c): v["rate"] for c, v in by_channel.items() if v["rate"] is not None},
        "reconciliation": {str(k): v for k, v in kpis["reconciliation"].items()},
    }


def platform_kpis(path: Path | None) -> dict[str, Any] | None:
    """The KPI file's summary, or {"error": reason}; None when no file is configured."""
    if path is None:
        return None
    try:
        stat = path.stat()
        key = (stat.st_mtime_ns, stat.st_size)
        with _cache_lock:
            cached = _cache.get(path)
        if cached and cached[0] == key:
            return cached[1]
        if stat.st_size > MAX_KPI_FILE_BYTES:
            raise ValueError(f"larger than {MAX_KPI_FILE_BYTES // (1024 * 1024)} MiB")
        summary = {**_summarise(orjson.loads(path.read_bytes())), "file": path.name}
    except OSError as exc:
        return {"error": f"cannot read the KPI file {path.name}: {exc.strerror or exc}", "file": path.name}
    except (ValueError, KeyError, TypeError, AttributeError) as exc:  # orjson's errors are ValueErrors
        return {"error": f"the KPI file {path.name} is refused: {str(exc)[:200]}", "file": path.name}
    with _cache_lock:
        _cache[path] = (key, summary)
    return summary


def _charts(data: dict[str, Any], platform: dict[str, Any] | None) -> dict[str, Any]:
    releases, rules, backlog = data["screened_releases"], data["rules"], data["backlog"]
    per_day = data["decisions"]["per_day"]
    charts = {
        "per_day": svgcharts.daily_columns(
            "chart-decisions-per-day", "Decisions per day by action", per_day["days"], per_day["by_action"]
        ),
        "by_company": svgcharts.bar_chart(
            "chart-releases-by-company", "Screened releases by company", list(releases["payments_by_company"].items())
        ),
        "by_channel": svgcharts.bar_chart(
            "chart-releases-by-channel", "Screened releases by channel", list(releases["payments_by_channel"].items())
        ),
        "rules": svgcharts.bar_chart(
            "chart-flagged-by-rule", "Flagged payments by rule", [(r, v["flagged_payments"]) for r, v in rules.items()]
        ),
        "backlog": svgcharts.bar_chart(
            "chart-backlog-age", "Review backlog by age", list(backlog["by_age"].items()), ordered=True
        ),
    }
    if platform and not platform.get("error") and platform["failure_rate_by_channel"]:
        charts["failure"] = svgcharts.bar_chart(
            "chart-failure-by-channel", "Failure and return rate by channel (%)",
            [(c, round(100 * r, 2)) for c, r in platform["failure_rate_by_channel"].items()], unit=" %",
        )  # fmt: skip
    return charts


def panel_context(request: Request, session: Session, filters: DashboardFilters) -> dict[str, Any]:
    data = desk_kpis(session, filters)
    platform = platform_kpis(getattr(request.app.state, "kpis_file", None))
    return {"data": data, "platform": platform, "charts": _charts(data, platform), "filters": filters}


@dashboard_router.get("/dashboard")
def dashboard_page(request: Request, session: DB, web: Current) -> Response:
    filters = filters_of(request)
    return render(request, "dashboard.html", user=web.user, csrf=web.csrf_token, options=filter_options(session),
                  **panel_context(request, session, filters))  # fmt: skip


@dashboard_router.get("/dashboard/panel")
def dashboard_panel(request: Request, session: DB, web: Current) -> Response:
    return render(
        request, "dashboard_panel.html", user=web.user, **panel_context(request, session, filters_of(request))
    )
