"""Alerting: decisions become notifications that reach the right person once.

Routing is modelled on Alertmanager (route tree, grouping, inhibition, silences) with acknowledgement
and escalation on top; state lives in Redis so several workers share it; delivery is email
(aiosmtplib) and SMS (twilio). Modules:

  config, loader, yamlsource, durations, matchers   the routes file and its validation
  routing                                           the route tree and per-receiver channel policy
  model, redact                                     Alert, build_alert(decision), redaction
  store, redis_store, state                         storage primitives (memory / Redis) and alert state
  suppress, dispatcher, delivery, timing            silences/acks/inhibition, grouping, delivery policy
  templates, channels, email_channel, sms_channel   rendering and sending
  service, embedded, settings, cli                  wiring for the stream, the embedded run and the CLI
"""

from paysentry.alerts.config import RoutesConfig
from paysentry.alerts.dispatcher import AlertDispatcher, TickReport
from paysentry.alerts.embedded import EmbeddedAlerts
from paysentry.alerts.loader import RoutesHolder, load_routes, parse_routes
from paysentry.alerts.model import Alert, build_alert
from paysentry.alerts.redis_store import RedisStore
from paysentry.alerts.settings import AlertSettings
from paysentry.alerts.store import KVStore, MemoryStore
from paysentry.alerts.yamlsource import ConfigError

__all__ = [
    "Alert",
    "AlertDispatcher",
    "AlertSettings",
    "ConfigError",
    "EmbeddedAlerts",
    "KVStore",
    "MemoryStore",
    "RedisStore",
    "RoutesConfig",
    "RoutesHolder",
    "TickReport",
    "build_alert",
    "load_routes",
    "parse_routes",
]
