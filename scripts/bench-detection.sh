#!/usr/bin/env bash
# Detection quality on the variation populations (benches/detection.rs): recall and false
# positives per rule, the delay to a stopped income's task, state bytes per customer. With
# BASELINE=<git revision>, the same streams also go through that revision's `callahead replay`
# (built in a temporary worktree under target/) and are scored side by side, in one run.
# This build replays the streams with 6 h of allowed lateness (variations::LATENESS: ATM events
# delivered hours late); the baseline's `callahead replay` gets the same if it has an
# `--allowed-lateness` option, and otherwise runs at the engine's default (10 minutes).
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ -n "${BASELINE:-}" ]]; then
    cargo bench --locked --bench detection --no-run
    cargo bench --locked --bench detection >/dev/null # writes the streams
    base="target/baseline-$(git rev-parse --short "$BASELINE")"
    [[ -d "$base" ]] || git worktree add --detach "$base" "$BASELINE"
    (cd "$base" && cargo build --release --locked --bin callahead)
    out="target/detection/baseline"
    mkdir -p "$out"
    lateness=()
    if "$base/target/release/callahead" replay --help | grep -q -- '--allowed-lateness'; then
        lateness=(--allowed-lateness 6h)
    else
        echo "baseline: callahead replay has no --allowed-lateness; it replays at its default" >&2
    fi
    for f in target/detection/variations-*.jsonl; do
        seed="${f##*-}"; seed="${seed%.jsonl}"
        "$base/target/release/callahead" replay --rules "$base/rules" --input "$f" --output "$out/tasks-$seed.jsonl" "${lateness[@]}" 2>/dev/null
    done
    exec cargo bench --locked --bench detection -- --score-replays "$out"
fi
exec cargo bench --locked --bench detection
