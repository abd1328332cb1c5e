#!/usr/bin/env bash
# The whole test suite: unit tests, property tests, scenario tests and the CLI end to end.
# The core needs no external service; later components (broker, database, SMTP server) are
# installed and started from here as they arrive.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --locked --all-targets "$@"
cargo test --locked --doc
