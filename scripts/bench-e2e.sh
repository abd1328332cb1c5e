#!/usr/bin/env bash
# End-to-end benchmark of `callahead serve` with a real broker (Tansu, started here) and each
# task store. Prints the consume-only ceiling, the service's sustained throughput and the
# produce -> task durable latency (p50, p99) at a steady rate. See benches/e2e.rs for settings.
set -euo pipefail
cd "$(dirname "$0")/.."
export CALLAHEAD_TEST_KAFKA_STATE="${CALLAHEAD_TEST_KAFKA_STATE:-$PWD/.tmp/kafka-bench-$$}"
KAFKA_TEST_BOOTSTRAP="$(scripts/kafka.sh start)"
export KAFKA_TEST_BOOTSTRAP
trap 'scripts/kafka.sh stop >/dev/null 2>&1 || true; rm -rf "$CALLAHEAD_TEST_KAFKA_STATE"' EXIT
cargo build --release --locked --bin callahead
for store in ${STORES:-sqlite postgres}; do
    echo "== store: $store"
    STORE="$store" cargo bench --locked --bench e2e
done
