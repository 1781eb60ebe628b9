"""Alerting: decisions become notifications that reach the right person once.

Routing is modelled on Alertmanager (route tree, grouping, inhibition, silences) with acknowledgement
and escalation on top; state lives in Redis so several workers share it; delivery is email
(aiosmtplib) and SMS (twilio). Modules:

  config, loader, routes_yaml, durations, matchers  the routes file and its validation
  routing                                           the route tree and per-receiver channel policy
  model, redact                                     Alert, build_alert(decision), redaction
  store, redis_store, state                         storage primitives (memory / Redis) and alert state
  suppress, dispatcher, delivery, timing            silences/acks/inhibition, grouping, delivery policy
  templates, channels, email_channel, sms_channel   rendering and sending
  service, embedded, settings, cli                  wiring for the stream, the embedded run and the CLI

The routes file reads `${PAYSENTRY_ROUTES_*}` environment variables only, never one whose name looks
like a secret, and its errors never show a substituted value. Every silence added, expired or pruned and
every acknowledgement is appended to an audit log (JSON Lines, PAYSENTRY_ALERTS_AUDIT_LOG, default
`$PAYSENTRY_DATA_DIR/alerts-audit.jsonl`), which outlives the records in Redis.
"""

from paysentry.alerts.config import RoutesConfig
from paysentry.alerts.dispatcher import AlertDispatcher, TickReport
from paysentry.alerts.embedded import EmbeddedAlerts
from paysentry.alerts.loader import RoutesHolder, load_routes, parse_routes
from paysentry.alerts.model import Alert, build_alert
from paysentry.alerts.redis_store import RedisStore
from paysentry.alerts.routes_yaml import ConfigError
from paysentry.alerts.settings import AlertSettings
from paysentry.alerts.store import KVStore, MemoryKVStore

__all__ = [
    "Alert",
    "AlertDispatcher",
    "AlertSettings",
    "ConfigError",
    "EmbeddedAlerts",
    "KVStore",
    "MemoryKVStore",
    "RedisStore",
    "RoutesConfig",
    "RoutesHolder",
    "TickReport",
    "build_alert",
    "load_routes",
    "parse_routes",
]
