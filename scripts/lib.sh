# Shell helpers shared by scripts/kafka.sh and scripts/helm.sh (sourced, not run).
# The sourcing script sets SCRIPT_NAME first (the prefix of its messages).

# Prints the running script's header from "# Usage:" up to "# Notes" and exits 2.
usage() {
    sed -n '/^# Usage:/,/^# Notes/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
    exit 2
}

log() { echo "${SCRIPT_NAME:-script}: $*" >&2; }
die() { log "error: $*"; exit 1; }

sha256_of() {
    if command -v sha256sum >/dev/null 2>&1; then
        sha256sum "$1" | cut -d' ' -f1
    else
        python3 -c 'import hashlib,sys; print(hashlib.sha256(open(sys.argv[1],"rb").read()).hexdigest())' "$1"
    fi
}

# Runs "$@" holding an exclusive lock on $1 (if flock exists), so parallel installs don't collide.
with_lock() {
    local lock="$1"
    shift
    if command -v flock >/dev/null 2>&1; then
        (
            flock -w 300 9 || die "timed out waiting for $lock"
            "$@"
        ) 9>"$lock"
    else
        "$@"
    fi
}
