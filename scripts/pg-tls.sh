#!/usr/bin/env bash
# A PostgreSQL server of its own with TLS on, a server certificate from a test CA, and plain
# connections refused: for the test that the task store's link is encrypted and verified
# (verify-full). Uses the PostgreSQL binaries installed on the machine (initdb, pg_ctl); as
# root, runs them as the `postgres` user (initdb refuses root).
#
# Usage:
#   scripts/pg-tls.sh start DIR PORT   start on 127.0.0.1:PORT; DIR/ca.crt is the CA to trust,
#                                      DIR/other-ca.crt a CA that did not sign the server's
#   scripts/pg-tls.sh stop DIR         stop it (DIR may then be removed)
#
# Notes:
#   - The server certificate names localhost and 127.0.0.1; certificates last two days.
set -euo pipefail
SCRIPT_NAME=pg-tls.sh
source "$(dirname "$0")/lib.sh"

BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[[ -n "$BIN" ]] || die "no PostgreSQL binaries under /usr/lib/postgresql (apt-get install postgresql)"

as_pg() {
    if [[ $(id -u) -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}

case "${1:-}" in
    start)
        [[ $# -eq 3 ]] || usage
        dir=$(mkdir -p "$2" && cd "$2" && pwd)
        port=$3
        cd "$dir"
        openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 2 \
            -subj "/CN=callahead test CA" 2>/dev/null
        openssl req -x509 -newkey rsa:2048 -nodes -keyout other-ca.key -out other-ca.crt -days 2 \
            -subj "/CN=another CA" 2>/dev/null
        openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj "/CN=localhost" 2>/dev/null
        printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' > san.ext
        openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out server.crt \
            -days 2 -extfile san.ext 2>/dev/null
        chmod 600 server.key
        if [[ $(id -u) -eq 0 ]]; then chown -R postgres "$dir"; fi
        as_pg "$BIN/initdb" -D "$dir/data" -U postgres -A trust >/dev/null
        cat >> "$dir/data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir'
ssl = on
ssl_cert_file = '$dir/server.crt'
ssl_key_file = '$dir/server.key'
CONF
        cat > "$dir/data/pg_hba.conf" <<HBA
local all all trust
hostssl all all 127.0.0.1/32 trust
hostnossl all all 127.0.0.1/32 reject
HBA
        as_pg "$BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w start >/dev/null \
            || { cat "$dir/server.log" >&2; die "PostgreSQL with TLS did not start"; }
        ;;
    stop)
        [[ $# -eq 2 ]] || usage
        as_pg "$BIN/pg_ctl" -D "$2/data" -m immediate stop >/dev/null 2>&1 || true
        ;;
    *) usage ;;
esac
