#!/usr/bin/env bash
# Fuzzes the agents' API from its own OpenAPI document with Schemathesis (pinned, from PyPI):
# for each task store given, starts `callahead demo` on a free loopback port, reads the tokens it
# prints, and runs Schemathesis against /openapi.json as the supervisor (every operation, every
# phase) and then, shorter, as a fraud agent. Fails on any 5xx, any response outside the
# documented schema, any undocumented status code or content type, a 405 without `Allow`, and an
# engine that no longer applies commands once the fuzzing is over.
#
# Usage:
#   scripts/api-fuzz.sh STORE...      STORE: `sqlite` (a file in a temporary directory) or a
#                                     postgres:// URL (a fresh database is created on that server
#                                     for the run and dropped at the end)
#   scripts/api-fuzz.sh install       install Schemathesis (cached); prints the `st` path
#
# Notes:
#   - Prints one summary line per store on stdout; Schemathesis's full report goes to stderr when
#     it found something (and is kept in the work directory named there).
#   - Repeatable: a fixed seed, one worker and no example database (nothing is kept between runs).
#     About a minute per store on two cores.
#   - Schemathesis also sends requests without a token (a 401 that the failure limiter does not
#     count), invalid parameters and bodies (must be 4xx problems), and stateful sequences
#     (list tasks, then act on them), so the demo's tasks are claimed, resolved and reopened.
#   - The database user in a postgres:// URL must be allowed to create databases.
#
# Environment:
#   CALLAHEAD_BIN                   the binary (default: target/debug/callahead; relative to the
#                                   repository root, where the demo runs)
#   CALLAHEAD_FUZZ_EXAMPLES         examples per operation as the supervisor (default: 100)
#   CALLAHEAD_FUZZ_AGENT_EXAMPLES   examples per operation as a fraud agent (default: 25)
#   CALLAHEAD_FUZZ_SEED             the seed (default: 20260601)
#   CALLAHEAD_TEST_SCHEMATHESIS_CACHE  venv dir (default: ${XDG_CACHE_HOME:-$HOME/.cache}/callahead/schemathesis-4.32.5)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

SCHEMATHESIS_VERSION="4.32.5"
CACHE_BASE="${XDG_CACHE_HOME:-$HOME/.cache}/callahead"
VENV="${CALLAHEAD_TEST_SCHEMATHESIS_CACHE:-$CACHE_BASE/schemathesis-$SCHEMATHESIS_VERSION}"
ST="$VENV/bin/st"

BIN="${CALLAHEAD_BIN:-target/debug/callahead}"
EXAMPLES="${CALLAHEAD_FUZZ_EXAMPLES:-100}"
AGENT_EXAMPLES="${CALLAHEAD_FUZZ_AGENT_EXAMPLES:-25}"
SEED="${CALLAHEAD_FUZZ_SEED:-20260601}"
START_TIMEOUT=240

# Every response is checked: no 5xx, a documented status code, the documented content type and
# schema, and a 405 problem with an `Allow` header for a method a path does not take.
CHECKS="not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"
CHECKS+=",unsupported_method,allow_header_conformance"

SCRIPT_NAME=api-fuzz.sh
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

st_works() {
    [[ -f "$VENV/.installed" ]] && "$ST" --version 2>/dev/null | grep -q "version $SCHEMATHESIS_VERSION\$"
}

do_install() {
    st_works && return 0
    # A venv holds absolute paths, so it is built in place; the marker is written last.
    rm -rf "$VENV"
    log "installing schemathesis==$SCHEMATHESIS_VERSION into $VENV"
    python3 -m venv "$VENV" || die "python3 -m venv failed (Debian: apt-get install python3-venv)"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
        "schemathesis==$SCHEMATHESIS_VERSION" >&2 \
        || { rm -rf "$VENV"; die "pip install schemathesis==$SCHEMATHESIS_VERSION failed"; }
    touch "$VENV/.installed"
}

cmd_install() {
    mkdir -p "$(dirname "$VENV")"
    with_lock "$VENV.lock" do_install
    st_works || die "$ST is not Schemathesis $SCHEMATHESIS_VERSION"
    echo "$ST"
}

# State of the store being fuzzed, for the cleanup (also run by the EXIT trap).
WORK=""
DEMO_PID=""
PG_ADMIN_URL=""
PG_DB=""

cleanup() {
    if [[ -n "$DEMO_PID" ]]; then
        kill -TERM "$DEMO_PID" 2>/dev/null || true
        for _ in $(seq 50); do
            kill -0 "$DEMO_PID" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$DEMO_PID" 2>/dev/null || true
        wait "$DEMO_PID" 2>/dev/null || true
        DEMO_PID=""
    fi
    if [[ -n "$PG_DB" ]]; then
        psql "$PG_ADMIN_URL" -v ON_ERROR_STOP=1 -qc "DROP DATABASE IF EXISTS $PG_DB WITH (FORCE)" \
            >/dev/null 2>&1 || log "warning: could not drop database $PG_DB"
        PG_DB=""
    fi
}

# Sets STORE_URL to the demo's --store for STORE: a file in the work directory for sqlite (gone
# with it), a new database for a postgres:// URL.
store_url() {
    local store="$1"
    case "$store" in
        sqlite) STORE_URL="sqlite://$WORK/tasks.db" ;;
        postgres://* | postgresql://*)
            command -v psql >/dev/null 2>&1 || die "psql is needed to create the fuzz database"
            local query="" base="${store%%\?*}"
            [[ "$base" != "$store" ]] && query="?${store#*\?}"
            # Everything before the path: scheme, user and host.
            local server="${base#*://}"
            server="${base%%://*}://${server%%/*}"
            PG_ADMIN_URL="$store"
            PG_DB="callahead_fuzz_$$_$RANDOM"
            psql "$PG_ADMIN_URL" -v ON_ERROR_STOP=1 -qc "CREATE DATABASE $PG_DB" >/dev/null \
                || { PG_DB=""; die "cannot create database $PG_DB on $server (is PostgreSQL up?)"; }
            STORE_URL="$server/$PG_DB$query"
            ;;
        *) die "unknown store \`$store\` (sqlite or a postgres:// URL)" ;;
    esac
}

# Starts the demo in the background; sets DEMO_PID and BASE, leaves the tokens in $WORK/demo.out.
start_demo() {
    local url="$1"
    local args=(demo --customers 200 --show 0 --listen 127.0.0.1:0 --store "$url")
    (cd "$ROOT" && exec "$BIN" "${args[@]}") >"$WORK/demo.out" 2>"$WORK/demo.err" &
    DEMO_PID=$!
    local waited=0
    until grep -qE '^  auditor +auditor +cah_' "$WORK/demo.out" 2>/dev/null; do
        if ! kill -0 "$DEMO_PID" 2>/dev/null; then
            local rc=0
            wait "$DEMO_PID" 2>/dev/null || rc=$?
            DEMO_PID=""
            tail -n 20 "$WORK/demo.out" "$WORK/demo.err" >&2
            die "the demo exited (status $rc) before serving the API"
        fi
        ((waited++ < START_TIMEOUT * 10)) || die "the demo printed no tokens within ${START_TIMEOUT}s"
        sleep 0.1
    done
    BASE="$(sed -n 's|^API: *\(http://[^ ]*\)/api/v1 .*|\1|p' "$WORK/demo.out" | head -n 1)"
    [[ "$BASE" == http://127.0.0.1:* ]] || die "no API address in the demo's output"
}

token_of() {
    awk -v name="$1" '$1 == name && $3 ~ /^cah_/ { print $3; exit }' "$WORK/demo.out"
}

# Runs Schemathesis as one caller; its report goes to $WORK/NAME.log. Returns its status.
fuzz_as() {
    local name="$1" token="$2" examples="$3"
    # Run inside the work directory: Schemathesis reads schemathesis.toml and writes its reports
    # relative to where it runs, and nothing of it belongs in the repository.
    (
        cd "$WORK"
        "$ST" run "$BASE/openapi.json" \
            --header "Authorization: Bearer $token" \
            --checks "$CHECKS" \
            --max-examples "$examples" \
            --seed "$SEED" \
            --workers 1 \
            --generation-database none \
            --request-timeout 20 \
            --no-color
    ) >"$WORK/$name.log" 2>&1
}

# After the fuzz, the engine must still apply commands: a note on a task gets its final answer
# (not a 202 for ever). A command the store cannot write would leave it retrying that one.
engine_still_applies() {
    local token="$1"
    python3 - "$BASE" "$token" <<'EOF'
import json, sys, time, urllib.error, urllib.request

base, token = sys.argv[1], sys.argv[2]

def call(method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    headers = {"Authorization": "Bearer " + token, "Content-Type": "application/json"}
    request = urllib.request.Request(base + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=20) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")

status, page = call("GET", "/api/v1/tasks?status=open,claimed,contacted,resolved&limit=1")
if status != 200 or not page["items"]:
    sys.exit(f"cannot list a task after the fuzz: {status} {page}")
task = page["items"][0]["id"]
status, body = call("POST", f"/api/v1/tasks/{task}/notes", {"note": "api-fuzz: still applying commands?"})
deadline = time.monotonic() + 30
while status == 202 and time.monotonic() < deadline:
    time.sleep(0.5)
    status, body = call("GET", body["location"])
if status == 202 or status >= 500:
    sys.exit(f"after the fuzz, a note on {task} got no final answer ({status} {body}): the engine is stuck")
EOF
}

# "N generated" from a report's summary, for the one-line summary.
cases_of() {
    sed -n 's/^ *\([0-9][0-9]*\) generated.*/\1/p' "$1" | tail -n 1
}

# Fuzzes the API on one store; sets FAILED=1 if Schemathesis found anything.
fuzz_store() {
    local store="$1" started=$SECONDS supervisor agent failed=""
    WORK="$(mktemp -d "${TMPDIR:-/tmp}/callahead-api-fuzz.XXXXXX")"
    store_url "$store"
    start_demo "$STORE_URL"
    supervisor="$(token_of supervisor)"
    agent="$(token_of fraud-agent)"
    [[ -n "$supervisor" && -n "$agent" ]] || die "the demo printed no supervisor or fraud-agent token"
    log "$store: demo on $BASE (pid $DEMO_PID), fuzzing as the supervisor"
    fuzz_as supervisor "$supervisor" "$EXAMPLES" || failed+=" supervisor"
    log "$store: fuzzing as a fraud agent"
    fuzz_as fraud-agent "$agent" "$AGENT_EXAMPLES" || failed+=" fraud-agent"
    engine_still_applies "$supervisor" 2>"$WORK/engine.log" || failed+=" engine"
    cleanup
    local summary
    summary="$(cases_of "$WORK/supervisor.log") + $(cases_of "$WORK/fraud-agent.log") test cases"
    if [[ -z "$failed" ]]; then
        echo "api-fuzz: ${store%%\?*}: ok, $summary, $((SECONDS - started))s (schemathesis $SCHEMATHESIS_VERSION, seed $SEED)"
        rm -rf "$WORK"
    else
        for name in $failed; do
            if [[ "$name" == engine ]]; then
                log "$store: $(tail -n 1 "$WORK/engine.log")"
            else
                log "$store: schemathesis as $name found problems:"
                cat "$WORK/$name.log" >&2
            fi
        done
        echo "api-fuzz: ${store%%\?*}: FAILED ($failed ), $summary, $((SECONDS - started))s (reports in $WORK)"
        FAILED=1
    fi
}

main() {
    [[ $# -ge 1 ]] || usage
    case "$1" in
        -h | --help | help) usage ;;
        install) [[ $# -eq 1 ]] || usage; cmd_install; return ;;
    esac
    [[ "$BIN" == /* ]] || BIN="$ROOT/$BIN"
    [[ -x "$BIN" ]] || die "$BIN is not built (cargo build)"
    cmd_install >/dev/null
    trap cleanup EXIT
    trap 'exit 130' INT TERM
    FAILED=0
    local store
    for store in "$@"; do
        [[ "$store" == sqlite || "$store" == postgres://* || "$store" == postgresql://* ]] \
            || die "unknown store \`$store\` (sqlite or a postgres:// URL)"
    done
    for store in "$@"; do
        fuzz_store "$store"
    done
    return "$FAILED"
}

main "$@"
