#!/usr/bin/env bash
# End-to-end benchmark of `callahead serve` with a real broker (Tansu, started here) and each
# task store: the consume-only ceiling, the service's sustained throughput and where its time
# goes, and the produce -> task durable latency at a steady rate. Settings and what is measured:
# benches/e2e.rs. Examples:
#   scripts/bench-e2e.sh                                   both stores, defaults
#   STORES=sqlite EVENTS=100000 scripts/bench-e2e.sh
#   CALLAHEAD_KAFKA_BATCH_WAIT_MS=1 scripts/bench-e2e.sh   any service setting (and librdkafka
#                                                          CALLAHEAD_KAFKA_CLIENT_* for both sides)
#   PERF=/tmp/callahead.perf STORES=sqlite scripts/bench-e2e.sh   CPU profile of the throughput run
#   CHECKPOINTS="true false" scripts/bench-e2e.sh          the cost of state checkpoints: each
#                                                          store with them on and off, one run
#   PARTITION_COUNTS="1 4" WORKER_COUNTS="1 2"             the throughput matrix (these defaults);
#                                                          setting PHASES runs one configuration
# Needs PostgreSQL at $PG_URL (default postgres://postgres@127.0.0.1:5432/test) for the
# postgres store; a scratch database is created and dropped per run.
set -euo pipefail
cd "$(dirname "$0")/.."
export CALLAHEAD_TEST_KAFKA_STATE="${CALLAHEAD_TEST_KAFKA_STATE:-$PWD/.tmp/kafka-bench-$$}"
# The broker logs every request at info level (GBs per run, and much slower): keep it quiet
# whatever RUST_LOG the caller uses for the service.
KAFKA_TEST_BOOTSTRAP="$(RUST_LOG=warn scripts/kafka.sh start)"
export KAFKA_TEST_BOOTSTRAP
trap 'scripts/kafka.sh stop >/dev/null 2>&1 || true; rm -rf "$CALLAHEAD_TEST_KAFKA_STATE"' EXIT
cargo build --release --locked --bin callahead
cargo bench --locked --bench e2e --no-run
for store in ${STORES:-sqlite postgres}; do
    echo "== store: $store"
    if [[ "$store" == postgres ]] && ! psql "${PG_URL:-postgres://postgres@127.0.0.1:5432/test}" -qc 'SELECT 1' >/dev/null; then
        echo "bench-e2e.sh: PostgreSQL is not reachable at ${PG_URL:-postgres://postgres@127.0.0.1:5432/test}" >&2
        exit 1
    fi
    for checkpoint in ${CHECKPOINTS:-true}; do
        if [[ -n "${PHASES:-}" ]]; then
            echo "== store: $store, state checkpoints: $checkpoint"
            STORE="$store" CALLAHEAD_STATE_CHECKPOINT="$checkpoint" cargo bench --locked --bench e2e
            continue
        fi
        # Throughput for each input partition count and engine worker count; then the latency
        # at a steady rate with the defaults (one partition, one worker per core).
        for partitions in ${PARTITION_COUNTS:-1 4}; do
            for workers in ${WORKER_COUNTS:-1 2}; do
                echo "== store: $store, state checkpoints: $checkpoint, partitions: $partitions, engine workers: $workers"
                STORE="$store" CALLAHEAD_STATE_CHECKPOINT="$checkpoint" PHASES=throughput PARTITIONS="$partitions" \
                    CALLAHEAD_ENGINE_WORKERS="$workers" cargo bench --locked --bench e2e
            done
        done
        echo "== store: $store, state checkpoints: $checkpoint, latency at a steady rate (defaults)"
        STORE="$store" CALLAHEAD_STATE_CHECKPOINT="$checkpoint" PHASES=floor,latency cargo bench --locked --bench e2e
    done
done
