"""Payment analytics: KPIs (kpis.py), the payment-strategy report (strategy.py), periodic data validation
(reconcile.py, with its thresholds and alerts in validation.py), Prometheus metrics (metrics.py) and the
`paysentry report` commands (cli.py).

For a web page or a notebook: `kpis_from(events, decisions, start=..., end=...)` returns the KPI dict of
a period (schema in docs/kpis.md); `compute_kpis(path, ...)` does the same from files.
"""

from paysentry.analytics.sources import compute_kpis, kpis_from

__all__ = ["compute_kpis", "kpis_from"]
