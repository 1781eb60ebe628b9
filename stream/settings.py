"""Settings of the live stream, from the environment (prefix PAYSENTRY_) or a `.env` file.

Secrets (SASL and key passwords, the Redis URL, the account hash key, the model signing key) are
`SecretStr`: they print as `**********` and are only unwrapped where a client is built. A worker that
meets a bad setting says so in one line (`settings_error`), never with the value.
"""

from __future__ import annotations

import hashlib
import hmac
import ssl
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator

from paysentry.contract import ACTIONS
from paysentry.settings import EngineSettings

StoreKind = Literal["auto", "memory", "rocksdb"]


def rocksdb_available() -> bool:
    try:
        import rocksdict  # noqa: F401
    except ImportError:
        return False
    return True


class StreamSettings(EngineSettings):
    # -- Kafka ---------------------------------------------------------------------------------------
    kafka_brokers: str = Field(default="localhost:9092", description="bootstrap servers, comma separated")
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = "PLAIN"
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_cafile: Path | None = None
    kafka_ssl_certfile: Path | None = None
    kafka_ssl_keyfile: Path | None = None
    kafka_ssl_key_password: SecretStr | None = None
    # -- topology ------------------------------------------------------------------------------------
    topic_prefix: str = ""
    app_id: str = "paysentry"
    partitions: int = Field(default=4, ge=1, le=256)
    replication: int = Field(default=1, ge=1, description="replication factor of the topics the app creates")
    session_timeout: float = Field(default=10.0, gt=0, description="seconds before a dead worker's partitions move")
    shard_partitions: str = Field(default="", description='pin shards to partitions: "CN01=0,US01=1" (others hash)')
    store: StoreKind = "auto"
    data_dir: Path = Path("var/stream")
    # -- the decision stage --------------------------------------------------------------------------
    alert_action: str = "review"
    checkpoint_events: int = Field(default=500, ge=1, description="checkpoint a partition after this many events")
    checkpoint_seconds: float = Field(default=0.5, gt=0, description="... or after this long")
    tick_seconds: float = Field(default=0.2, gt=0, description="how often ingest reports its progress")
    idle_seconds: float = Field(default=1.0, ge=0, description="an inbound partition caught up this long is idle")
    stall_seconds: float = Field(default=5.0, gt=0, description="records waiting, none delivered this long: re-read")
    max_buffer: int = Field(default=200_000, ge=1, description="events held for event-time order per partition")
    producer_linger_seconds: float = Field(
        default=0.005, ge=0, le=1, description="the producer waits this long to fill a batch (fewer, larger requests)"
    )
    producer_batch_bytes: int = Field(
        # Faust's default (16 KiB) holds about ten decisions: on a backlog, a send then waits for the
        # broker's answer to the previous request (measured: stream/README.md). One batch must fit the
        # broker's message.max.bytes (Kafka's default: 1 MiB; lower this where the broker's is lower).
        default=512 * 1024,
        ge=16 * 1024,
        le=1_000_000,
        description="most bytes the producer gathers per partition while a request is with the broker",
    )
    consumer_fetch_bytes: int = Field(
        default=4 * 1024**2,
        ge=64 * 1024,
        le=64 * 1024**2,
        description="most bytes one fetch reads from a partition (Faust's default 1 MiB; measured: stream/README.md)",
    )
    consumer_fetch_wait_ms: int = Field(
        default=100,
        ge=10,
        le=1500,
        description="longest the broker holds a fetch that finds no new records (Faust fixes 1,500 ms; "
        "measured: stream/README.md, 'One fetch at a time')",
    )
    batch_linger_seconds: float = Field(
        default=0.02,
        ge=0,
        le=1,
        description="ingest: a micro-batch waits this long for more events (a steady stream travels in batches too)",
    )
    ordering: Literal["exact", "bounded"] = Field(
        default="exact", description="exact: decide as replay does; bounded: see lateness_seconds (stream/README.md)"
    )
    lateness_seconds: float = Field(
        default=0.0, ge=0, description="bounded ordering: an event waits for newer ones at most this much event time"
    )
    # -- the review desk (stream/cases_agent.py): off unless a database is given -------------------------
    database_url: SecretStr | None = Field(
        default=None, description="the desk's database: cases filled from `decisions`, verdicts published back"
    )
    desk_base_url: str = Field(default="", max_length=200, description="prefix of case links in case.resolved")
    desk_publish: bool = Field(default=True, description="publish the desk's outbox from this worker")
    desk_publish_seconds: float = Field(default=1.0, gt=0, description="how often the outbox is drained")
    # -- other services ------------------------------------------------------------------------------
    redis_url: SecretStr | None = None
    model_signing_key: SecretStr | None = Field(
        default=None, description="signs model snapshots (32 bytes or more, the same on every worker)"
    )
    web_port: int | None = None
    web_bind: str = Field(default="127.0.0.1", description="interface of the web server (0.0.0.0: every one)")
    metrics_port: int | None = Field(default=None, ge=0, le=65535, description="serve Prometheus /metrics here")
    metrics_bind: str = Field(default="127.0.0.1", description="interface of /metrics (loopback unless told)")

    @field_validator("alert_action")
    @classmethod
    def _known_action(cls, value: str) -> str:
        if value not in ACTIONS:
            raise ValueError(f"alert_action must be one of {', '.join(ACTIONS)}")
        return value

    @field_validator("model_signing_key")
    @classmethod
    def _strong_signing_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            from models.lifecycle import check_signing_key

            check_signing_key(value.get_secret_value().encode())
        return value

    # -- derived -------------------------------------------------------------------------------------
    @property
    def brokers(self) -> list[str]:
        return [b.strip() for b in self.kafka_brokers.split(",") if b.strip()]

    @property
    def group_id(self) -> str:
        return f"{self.topic_prefix}{self.app_id}"

    def topic(self, name: str) -> str:
        return f"{self.topic_prefix}{name}"

    def pinned_shards(self) -> dict[str, int]:
        pinned = {}
        for item in filter(None, (part.strip() for part in self.shard_partitions.split(","))):
            shard, _, number = item.partition("=")
            pinned[shard.strip()] = int(number)
        return pinned

    def partition_for_shard(self, shard: str) -> int:
        from stream.topics import partition_for_shard

        return partition_for_shard(shard, self.partitions, self.pinned_shards())

    def idle_after(self) -> float:
        """How long a caught-up inbound partition must stay so to count as idle: in bounded ordering it
        is idle as soon as it is caught up (a record that comes later may be decided out of order)."""
        return self.idle_seconds if self.ordering == "exact" else 0.0

    def lateness_micros(self) -> int | None:
        """Bounded ordering's lateness in event-time microseconds (None: exact ordering)."""
        return None if self.ordering == "exact" else int(self.lateness_seconds * 1_000_000)

    def store_url(self) -> str:
        kind = self.store
        if kind == "auto":
            kind = "rocksdb" if rocksdb_available() else "memory"
        return "rocksdb://" if kind == "rocksdb" else "memory://"

    def require_hash_key(self) -> bytes:
        if self.account_hash_key is None or not self.account_hash_key.get_secret_value():
            raise ValueError("PAYSENTRY_ACCOUNT_HASH_KEY must be set for workers (all workers share it)")
        return self.account_hash_key.get_secret_value().encode()

    def internal_key(self) -> bytes:
        """Key of the HMAC on `engine.events` records: derived from the account hash key, which every
        worker of the deployment holds and nothing else needs, so no further secret to distribute."""
        return hmac.new(self.require_hash_key(), b"paysentry internal records: engine.events", hashlib.sha256).digest()

    def ssl_context(self) -> ssl.SSLContext | None:
        if self.kafka_security_protocol not in ("SSL", "SASL_SSL"):
            return None
        from aiokafka.helpers import create_ssl_context

        return create_ssl_context(
            cafile=str(self.kafka_ssl_cafile) if self.kafka_ssl_cafile else None,
            certfile=str(self.kafka_ssl_certfile) if self.kafka_ssl_certfile else None,
            keyfile=str(self.kafka_ssl_keyfile) if self.kafka_ssl_keyfile else None,
            password=self.kafka_ssl_key_password.get_secret_value() if self.kafka_ssl_key_password else None,
        )

    def aiokafka_kwargs(self) -> dict[str, Any]:
        """Connection options for plain aiokafka clients (producer, tail, read-back, benchmark)."""
        kwargs: dict[str, Any] = {
            "bootstrap_servers": self.brokers,
            "security_protocol": self.kafka_security_protocol,
        }
        context = self.ssl_context()
        if context is not None:
            kwargs["ssl_context"] = context
        if self.kafka_security_protocol.startswith("SASL"):
            kwargs["sasl_mechanism"] = self.kafka_sasl_mechanism
            kwargs["sasl_plain_username"] = self.kafka_sasl_username
            kwargs["sasl_plain_password"] = (
                self.kafka_sasl_password.get_secret_value() if self.kafka_sasl_password else None
            )
        return kwargs

    def faust_credentials(self) -> Any:
        """Faust's broker_credentials for the same options (None for PLAINTEXT)."""
        import faust

        context = self.ssl_context()
        if self.kafka_security_protocol.startswith("SASL"):
            password = self.kafka_sasl_password.get_secret_value() if self.kafka_sasl_password else ""
            return faust.SASLCredentials(
                username=self.kafka_sasl_username or "",
                password=password,
                mechanism=self.kafka_sasl_mechanism,
                ssl_context=context,
            )
        if context is not None:
            return faust.SSLCredentials(context)
        return None


def settings_error(exc: ValidationError | ValueError) -> str:
    """One line for a bad setting: the variable and what is wrong, never the value given."""
    if not isinstance(exc, ValidationError):
        return str(exc)
    problems = []
    for error in exc.errors(include_url=False, include_input=False):
        name = "PAYSENTRY_" + "_".join(str(part) for part in error["loc"]).upper()
        message = error["msg"].removeprefix("Value error, ")
        problems.append(message if message.startswith(name) else f"{name}: {message}")
    return "invalid settings: " + "; ".join(problems)
