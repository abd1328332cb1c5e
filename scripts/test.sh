#!/usr/bin/env bash
# The whole test suite: unit, property and scenario tests, the CLI end to end, and the service
# against real components. Installs and starts what the tests need:
#   - a Kafka-protocol broker (Tansu 0.6.0, pinned, cached under ~/.cache/callahead) on a free
#     loopback port, stopped again on exit;
#   - PostgreSQL is expected on 127.0.0.1:5432 (trust auth, database `test`), as on this
#     project's machines and CI; the embedded store (SQLite) needs nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then
    echo "test.sh: PostgreSQL is not answering on 127.0.0.1:5432; trying to start it" >&2
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql)" main start || true
fi

export CALLAHEAD_TEST_KAFKA_STATE="${CALLAHEAD_TEST_KAFKA_STATE:-$PWD/.tmp/kafka-test-$$}"
KAFKA_TEST_BOOTSTRAP="$(scripts/kafka.sh start)"
export KAFKA_TEST_BOOTSTRAP
trap 'scripts/kafka.sh stop >/dev/null 2>&1 || true; rm -rf "$CALLAHEAD_TEST_KAFKA_STATE"' EXIT
echo "test.sh: broker on $KAFKA_TEST_BOOTSTRAP" >&2

cargo test --locked --lib --bins --tests "$@"
cargo test --locked --doc
