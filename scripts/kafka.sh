#!/usr/bin/env bash
# A local Apache Kafka 3.9.1 broker (KRaft, single node) for developers, built from Maven Central jars.
#
#   scripts/kafka.sh fetch    # download the jars into .cache/kafka-3.9.1/libs (or $PAYSENTRY_KAFKA_HOME)
#   scripts/kafka.sh start    # start a background broker on a free loopback port; prints its bootstrap
#   scripts/kafka.sh status   # print the running broker's bootstrap
#   scripts/kafka.sh stop     # stop it and delete its data
#
# Needs java (17+), and mvn for the first fetch. The work is done by devservices/kafka.py, which the
# test suite uses too; to point the tests at this broker instead of their own, export
# PAYSENTRY_TEST_KAFKA_BOOTSTRAP=<the printed bootstrap>.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [[ -x "$root/.venv/bin/python" ]]; then
    python="$root/.venv/bin/python"
else
    python="$(command -v python3)"
fi
cd "$root"
exec "$python" -m devservices.kafka "$@"
