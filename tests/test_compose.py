"""docker-compose.yml parses, has the services users need, its Kafka matches the test broker, and its
Prometheus and Grafana are wired to the worker's metrics (the dashboard uses only metrics the code exports)."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from devservices.kafka import BROKER_SETTINGS, KAFKA_VERSION
from paysentry.analytics.metrics import METRIC_NAMES

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = ROOT / "docker-compose.yml"
DASHBOARD = ROOT / "config" / "grafana" / "dashboards" / "paysentry.json"


def env_to_property(name: str) -> str:
    """The apache/kafka image's mapping: KAFKA_ prefix off, ``___`` -> ``-``, ``__`` -> ``_``, ``_`` -> ``.``."""
    key = name.removeprefix("KAFKA_").lower()
    return re.sub(r"_{1,3}", lambda m: {"_": ".", "__": "_", "___": "-"}[m.group(0)], key)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data: dict[str, Any] = YAML(typ="safe").load(COMPOSE.read_text())
    return data


@pytest.fixture(scope="module")
def kafka_props(compose: dict[str, Any]) -> dict[str, str]:
    env = compose["services"]["kafka"]["environment"]
    assert isinstance(env, dict), "use the mapping form for kafka's environment"
    return {
        env_to_property(k): str(v)
        for k, v in env.items()
        if k.startswith("KAFKA_") and k not in {"KAFKA_HEAP_OPTS", "KAFKA_OPTS", "KAFKA_LOG4J_OPTS"}
    }


def test_env_to_property() -> None:
    assert env_to_property("KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR") == "offsets.topic.replication.factor"
    assert env_to_property("KAFKA_FOO__BAR___BAZ_QUX") == "foo_bar-baz.qux"


def test_services_present(compose: dict[str, Any]) -> None:
    assert {"kafka", "redis", "mailpit", "worker", "prometheus", "grafana"} <= set(compose["services"])
    services = compose["services"]
    assert services["kafka"]["image"] == f"apache/kafka:{KAFKA_VERSION}"
    assert services["redis"]["image"].startswith("redis:7")
    mail_ports = {str(p).rsplit(":", 1)[-1] for p in services["mailpit"]["ports"]}
    assert {"1025", "8025"} <= mail_ports


def test_worker(compose: dict[str, Any]) -> None:
    worker = compose["services"]["worker"]
    assert worker["image"] == "python:3.11-slim"
    assert any(str(v).split(":")[1] == "/app" for v in worker["volumes"])
    assert "paysentry worker" in " ".join(worker["command"])
    assert worker["environment"] == {
        "PAYSENTRY_KAFKA_BROKERS": "kafka:9092",
        "PAYSENTRY_REDIS_URL": "redis://redis:6379/0",
        "PAYSENTRY_SMTP_HOST": "mailpit",
        "PAYSENTRY_SMTP_PORT": "1025",
        "PAYSENTRY_ALERTS_ROUTES_FILE": "/app/config/routes.yaml",
        "PAYSENTRY_ACCOUNT_HASH_KEY": "${PAYSENTRY_ACCOUNT_HASH_KEY:?set PAYSENTRY_ACCOUNT_HASH_KEY to a secret}",
        "PAYSENTRY_MODEL_SIGNING_KEY": "${PAYSENTRY_MODEL_SIGNING_KEY:?set it to a secret of 32+ bytes}",
        "PAYSENTRY_METRICS_PORT": "9108",
        "PAYSENTRY_METRICS_BIND": "0.0.0.0",
        "PYTHONUNBUFFERED": "1",
    }
    assert "ports" not in worker  # /metrics is for Prometheus on the compose network, not the host
    assert {"kafka", "redis", "mailpit"} <= set(worker["depends_on"])


def test_kafka_matches_harness(kafka_props: dict[str, str]) -> None:
    for key, value in BROKER_SETTINGS.items():
        if key == "listener.security.protocol.map":
            harness_map = set(value.split(","))
            assert harness_map <= set(kafka_props[key].split(",")), key
        else:
            assert kafka_props.get(key) == value, key


def test_kafka_listeners(compose: dict[str, Any], kafka_props: dict[str, str]) -> None:
    node_id = kafka_props["node.id"]
    assert kafka_props["controller.quorum.voters"] == f"{node_id}@kafka:9093"
    advertised = dict(e.split("://", 1) for e in kafka_props["advertised.listeners"].split(","))
    # Containers reach the broker the way the worker is told to; the host through a published port.
    worker_brokers = compose["services"]["worker"]["environment"]["PAYSENTRY_KAFKA_BROKERS"]
    assert advertised["PLAINTEXT"] == worker_brokers
    host_port = advertised["HOST"].rsplit(":", 1)[1]
    assert advertised["HOST"].startswith("localhost:")
    published = {str(p).rsplit(":", 1)[-1] for p in compose["services"]["kafka"]["ports"]}
    assert host_port in published
    listener_names = {e.split("://", 1)[0] for e in kafka_props["listeners"].split(",")}
    protocol_map = dict(e.split(":", 1) for e in kafka_props["listener.security.protocol.map"].split(","))
    assert listener_names == set(protocol_map)


def test_cluster_id_is_a_kafka_uuid(compose: dict[str, Any]) -> None:
    cluster_id = compose["services"]["kafka"]["environment"]["CLUSTER_ID"]
    assert len(cluster_id) == 22
    assert len(base64.urlsafe_b64decode(cluster_id + "==")) == 16


def _mounts(service: dict[str, Any]) -> dict[str, str]:
    """container path -> host path of a service's bind mounts."""
    mounts = {}
    for volume in service["volumes"]:
        host, container = str(volume).split(":")[:2]
        mounts[container] = host
    return mounts


def test_prometheus_scrapes_the_worker(compose: dict[str, Any]) -> None:
    prometheus = compose["services"]["prometheus"]
    assert all(str(p).startswith("127.0.0.1:") for p in prometheus["ports"])
    config_path = _mounts(prometheus)["/etc/prometheus/prometheus.yml"]
    config = YAML(typ="safe").load((ROOT / config_path).read_text())
    targets = [t for job in config["scrape_configs"] for sc in job["static_configs"] for t in sc["targets"]]
    worker_port = compose["services"]["worker"]["environment"]["PAYSENTRY_METRICS_PORT"]
    assert targets == [f"worker:{worker_port}"]


def test_grafana_is_provisioned_from_the_repository(compose: dict[str, Any]) -> None:
    grafana = compose["services"]["grafana"]
    assert all(str(p).startswith("127.0.0.1:") for p in grafana["ports"])
    assert grafana["environment"]["GF_AUTH_ANONYMOUS_ORG_ROLE"] == "Viewer"
    assert grafana["environment"]["GF_AUTH_DISABLE_LOGIN_FORM"] == "true"
    mounts = _mounts(grafana)
    provisioning = ROOT / mounts["/etc/grafana/provisioning"]
    datasources = YAML(typ="safe").load((provisioning / "datasources" / "prometheus.yml").read_text())
    source = datasources["datasources"][0]
    assert source["url"] == "http://prometheus:9090"
    providers = YAML(typ="safe").load((provisioning / "dashboards" / "paysentry.yml").read_text())
    dashboards_in_container = providers["providers"][0]["options"]["path"]
    assert (ROOT / mounts[dashboards_in_container]).resolve() == DASHBOARD.parent.resolve()
    dashboard = json.loads(DASHBOARD.read_text())
    uids = {t["datasource"]["uid"] for p in dashboard["panels"] for t in p.get("targets", [])}
    assert uids == {source["uid"]}


def _exported(name: str) -> bool:
    """A series name Prometheus holds for one of the exported families (histograms add suffixes)."""
    for suffix in ("_bucket", "_count", "_sum", "_created"):
        if name.endswith(suffix) and name.removesuffix(suffix) in METRIC_NAMES:
            return True
    return name in METRIC_NAMES


def test_dashboard_uses_only_exported_metrics() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    expressions = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    assert len(expressions) >= 10
    used = {name for expr in expressions for name in re.findall(r"\bpaysentry_[a-z0-9_]+", expr)}
    assert used, "the dashboard queries no paysentry metric"
    assert {name for name in used if not _exported(name)} == set()
    # the payment KPIs and the engine's health are both on it
    assert {"paysentry_payments_total", "paysentry_payment_outcomes_total", "paysentry_decision_latency_seconds_bucket",
            "paysentry_dead_letters_total"} <= used  # fmt: skip
