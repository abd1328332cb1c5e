#!/usr/bin/env bash
# The benchmarks: engine throughput on one thread (events/s, with and without JSON decoding) and
# state held per customer at a million customers. Targets: >= 1,000,000 events/s decoded,
# >= 500,000 events/s with decoding, <= 1 KiB per customer.
# Extra arguments go to the engine bench (e.g. `--sample-count 1`); CUSTOMERS=100000 shortens the
# state-size run.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== engine throughput (one thread; the items/s column is events/s)"
cargo bench --bench engine -- "$@"

echo
echo "== state per customer"
cargo bench --bench state_size
