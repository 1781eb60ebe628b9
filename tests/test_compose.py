"""docker-compose.yml parses, has the services users need, and its Kafka matches the test broker."""

from __future__ import annotations

import base64
import re
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from devservices.kafka import BROKER_SETTINGS, KAFKA_VERSION

COMPOSE = Path(__file__).resolve().parents[1] / "docker-compose.yml"


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
    assert {"kafka", "redis", "mailpit", "worker"} <= set(compose["services"])
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
        "PYTHONUNBUFFERED": "1",
    }
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
