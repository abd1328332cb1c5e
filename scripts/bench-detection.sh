#!/usr/bin/env bash
# Detection quality on the variation populations (benches/detection.rs): recall and false
# positives per rule, the delay to a stopped income's task, state bytes per customer. With
# BASELINE=<git revision>, the same streams also go through that revision's `callahead replay`
# (built in a temporary worktree under target/) and are scored side by side, in one run.
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
    for f in target/detection/variations-*.jsonl; do
        seed="${f##*-}"; seed="${seed%.jsonl}"
        "$base/target/release/callahead" replay --rules "$base/rules" --input "$f" --output "$out/tasks-$seed.jsonl" 2>/dev/null
    done
    exec cargo bench --locked --bench detection -- --score-replays "$out"
fi
exec cargo bench --locked --bench detection
