"""Shared test setup. Real services (Kafka, Redis, SMTP, the SMS endpoint, PostgreSQL, Prometheus) are
started on loopback by the fixture modules below, once per session and only when a test asks for them."""

pytest_plugins: list[str] = [
    "tests.harness.kafka_fixtures",
    "tests.harness.redis_fixtures",
    "tests.harness.alert_fixtures",
    "tests.harness.prometheus_fixtures",
    "tests.harness.postgres_fixtures",
]
