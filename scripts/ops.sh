#!/usr/bin/env bash
# Operations tooling: Prometheus (Debian's package, which brings promtool) for the alert rules,
# the metrics lint and a local Prometheus; kubernetes-validate (PyPI, pinned, offline schemas)
# and the prometheus-operator and KEDA CRD schemas (PyPI, pinned) for the chart's manifests.
#
# Usage:
#   scripts/ops.sh install                  install what the other subcommands need (once; cached)
#   scripts/ops.sh check-rules [FILE]       promtool check rules (default: the chart's alerts.yaml)
#   scripts/ops.sh test-rules [FILE]        promtool test rules (default: helm/tests/alerts.test.yaml)
#   scripts/ops.sh check-metrics [FILE]     promtool check metrics on FILE (default: stdin), text format
#   scripts/ops.sh validate-manifests [FILE...]
#                                           validate multi-document YAML files against the Kubernetes
#                                           schemas of every supported version (and the CRDs'); with no
#                                           FILE, the chart rendered with its default values and with
#                                           helm/examples/production.yaml
#   scripts/ops.sh prometheus PORT CONFIG DATA_DIR
#                                           start a Prometheus on 127.0.0.1:PORT in the background with
#                                           CONFIG and its storage in DATA_DIR; prints its URL once it is
#                                           ready (pid in DATA_DIR/prometheus.pid, log in
#                                           DATA_DIR/prometheus.log)
#   scripts/ops.sh stop-prometheus DATA_DIR stop the Prometheus started with DATA_DIR
#
# Notes:
#   - Prometheus and promtool come from Debian's `prometheus` package (bookworm: 2.42), installed
#     with apt-get when either is missing (root, or sudo). Its package also installs a system
#     service: when no /usr/sbin/policy-rc.d exists, install puts a temporary one in place (removed
#     again) so that apt-get does not start it. The Prometheus this script starts never touches a
#     system one: its own port on loopback, its own config and storage directory.
#   - kubernetes-validate (bundles the Kubernetes JSON schemas, works offline) and the
#     cloudcoil models of the prometheus-operator and KEDA CRDs (their openAPIV3Schema as pydantic
#     models; their JSON schema is what scripts/validate_manifests.py checks against) go into a
#     virtualenv under ${XDG_CACHE_HOME:-$HOME/.cache}/callahead.
#   - validate-manifests is strict: unknown fields are errors, for built-in kinds and CRDs alike, and
#     a kind with no schema at all is an error rather than a warning.
#
# Environment:
#   CALLAHEAD_K8S_VERSIONS   Kubernetes versions to validate against, space-separated (default: 1.29 to
#                            1.37, every minor version kubernetes-validate 1.37.0 bundles from 1.29 on)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CHART="$ROOT/helm/callahead"
ALERTS="$CHART/files/alerts.yaml"
ALERT_TESTS="$ROOT/helm/tests/alerts.test.yaml"

KUBERNETES_VALIDATE_VERSION="1.37.0"
# The last versions of these model packages that install on Python 3.11 (later ones need 3.14).
PROMETHEUS_OPERATOR_MODELS_VERSION="0.80.1.0"
KEDA_MODELS_VERSION="2.16.1.0"
K8S_VERSIONS_DEFAULT="1.29 1.30 1.31 1.32 1.33 1.34 1.35 1.36 1.37"
K8S_VERSIONS="${CALLAHEAD_K8S_VERSIONS:-$K8S_VERSIONS_DEFAULT}"

CACHE_BASE="${XDG_CACHE_HOME:-$HOME/.cache}/callahead"
VENV="$CACHE_BASE/ops-kv-$KUBERNETES_VALIDATE_VERSION-po-$PROMETHEUS_OPERATOR_MODELS_VERSION-keda-$KEDA_MODELS_VERSION"

SCRIPT_NAME=ops.sh
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

prometheus_installed() { command -v promtool >/dev/null 2>&1 && command -v prometheus >/dev/null 2>&1; }

CRD_SCHEMAS="$VENV/crd-schemas"

# The virtualenv is complete once the CRD schemas are exported (the last install step).
venv_works() {
    [[ -x "$VENV/bin/python" && -f "$CRD_SCHEMAS/.complete" ]] && "$VENV/bin/python" -c '
import kubernetes_validate.version as v
import sys; sys.exit(0 if v.__version__ == sys.argv[1] else 1)' "$KUBERNETES_VALIDATE_VERSION" 2>/dev/null
}

install_prometheus() {
    prometheus_installed && return 0
    local sudo=()
    if [[ "$(id -u)" -ne 0 ]]; then
        command -v sudo >/dev/null 2>&1 || die "installing prometheus needs root or sudo"
        sudo=(sudo)
    fi
    command -v apt-get >/dev/null 2>&1 || die "no apt-get: install Prometheus 2.x (prometheus and promtool on PATH)"
    log "installing Debian's prometheus package with apt-get (promtool included)"
    # Keep apt-get from starting the package's system service (removed again on any exit).
    local policy=/usr/sbin/policy-rc.d placed=""
    if [[ ! -e "$policy" ]]; then
        printf '#!/bin/sh\n# placed by callahead scripts/ops.sh during apt-get install\nexit 101\n' \
            | "${sudo[@]}" tee "$policy" >/dev/null
        "${sudo[@]}" chmod 0755 "$policy"
        placed=1
    fi
    local rc=0
    {
        "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq \
            && "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
                -o Dpkg::Use-Pty=0 prometheus >/dev/null
    } || rc=$?
    if [[ -n "$placed" ]]; then
        "${sudo[@]}" rm -f "$policy"
    fi
    [[ $rc -eq 0 ]] || die "apt-get install prometheus failed"
    prometheus_installed || die "prometheus or promtool is missing after installing the prometheus package"
}

# Runs in a subshell so a failed install leaves no half-made virtualenv behind.
do_install_venv() (
    venv_works && exit 0
    log "installing kubernetes-validate $KUBERNETES_VALIDATE_VERSION and the CRD models into $VENV"
    rm -rf "$VENV"
    trap '[[ $? -eq 0 ]] || rm -rf "$VENV"' EXIT
    python3 -m venv "$VENV" || die "python3 -m venv failed (Debian: apt-get install python3-venv)"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check \
        "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION" \
        "cloudcoil-models-prometheus-operator==$PROMETHEUS_OPERATOR_MODELS_VERSION" \
        "cloudcoil-models-keda==$KEDA_MODELS_VERSION" \
        || die "pip install kubernetes-validate and the CRD models failed"
    "$VENV/bin/python" "$ROOT/scripts/validate_manifests.py" --crd-schemas "$CRD_SCHEMAS" --export-crd-schemas \
        || die "cannot export the CRD schemas"
    touch "$CRD_SCHEMAS/.complete"
)

cmd_install() {
    install_prometheus
    mkdir -p "$CACHE_BASE"
    with_lock "$CACHE_BASE/ops.lock" do_install_venv
    venv_works || die "$VENV has no working kubernetes-validate $KUBERNETES_VALIDATE_VERSION"
    log "$(prometheus --version 2>&1 | head -n1); kubernetes-validate $KUBERNETES_VALIDATE_VERSION"
}

# http_ok URL: true when URL answers 2xx (curl, or Python where curl is missing).
http_ok() {
    if command -v curl >/dev/null 2>&1; then
        curl -fsS -o /dev/null --max-time 2 "$1" 2>/dev/null
    else
        python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)' "$1" 2>/dev/null
    fi
}

need_prometheus() { prometheus_installed || die "promtool/prometheus missing: run scripts/ops.sh install"; }

cmd_check_rules() {
    need_prometheus
    promtool check rules "${1:-$ALERTS}"
}

cmd_test_rules() {
    need_prometheus
    local file="${1:-$ALERT_TESTS}"
    # promtool resolves rule_files relative to the test file.
    promtool test rules "$file"
}

cmd_check_metrics() {
    need_prometheus
    if [[ $# -ge 1 ]]; then
        promtool check metrics <"$1"
    else
        promtool check metrics
    fi
}

cmd_validate_manifests() {
    venv_works || die "kubernetes-validate missing: run scripts/ops.sh install"
    local files=("$@") tmp=""
    if [[ ${#files[@]} -eq 0 ]]; then
        tmp="$(mktemp -d)"
        # shellcheck disable=SC2064
        trap "rm -rf '$tmp'" EXIT
        "$ROOT/scripts/helm.sh" template --namespace callahead >"$tmp/default.yaml"
        "$ROOT/scripts/helm.sh" template --namespace callahead \
            -f "$ROOT/helm/examples/production.yaml" >"$tmp/production.yaml"
        files=("$tmp/default.yaml" "$tmp/production.yaml")
    fi
    # shellcheck disable=SC2086
    "$VENV/bin/python" "$ROOT/scripts/validate_manifests.py" --crd-schemas "$CRD_SCHEMAS" \
        --versions $K8S_VERSIONS -- "${files[@]}"
}

cmd_prometheus() {
    need_prometheus
    local port="$1" config="$2" data="$3"
    [[ "$port" =~ ^[0-9]+$ ]] || die "PORT must be a number: $port"
    [[ -f "$config" ]] || die "no such config file: $config"
    mkdir -p "$data"
    promtool check config "$config" >/dev/null || die "promtool check config $config failed"
    local url="http://127.0.0.1:$port"
    setsid nohup prometheus \
        --config.file="$config" \
        --storage.tsdb.path="$data" \
        --storage.tsdb.retention.time=1d \
        --web.listen-address="127.0.0.1:$port" \
        --web.enable-lifecycle \
        --log.level=warn \
        </dev/null >"$data/prometheus.log" 2>&1 &
    local pid=$!
    echo "$pid" >"$data/prometheus.pid"
    local deadline=$((SECONDS + 60))
    until http_ok "$url/-/ready"; do
        if ! kill -0 "$pid" 2>/dev/null; then
            cat "$data/prometheus.log" >&2 || true
            die "prometheus exited before it was ready (log above)"
        fi
        if ((SECONDS > deadline)); then
            kill "$pid" 2>/dev/null || true
            die "prometheus not ready on $url within 60 s (log: $data/prometheus.log)"
        fi
        sleep 0.2
    done
    log "prometheus ready on $url (pid $pid, data $data)"
    echo "$url"
}

cmd_stop_prometheus() {
    local pidfile="$1/prometheus.pid"
    [[ -f "$pidfile" ]] || die "no $pidfile"
    local pid
    pid="$(cat "$pidfile")"
    if kill "$pid" 2>/dev/null; then
        for _ in $(seq 100); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
    fi
    rm -f "$pidfile"
}

main() {
    [[ $# -ge 1 ]] || usage
    local cmd="$1"
    shift
    case "$cmd" in
        install) [[ $# -eq 0 ]] || usage; cmd_install ;;
        check-rules) [[ $# -le 1 ]] || usage; cmd_check_rules "$@" ;;
        test-rules) [[ $# -le 1 ]] || usage; cmd_test_rules "$@" ;;
        check-metrics) [[ $# -le 1 ]] || usage; cmd_check_metrics "$@" ;;
        validate-manifests) cmd_validate_manifests "$@" ;;
        prometheus) [[ $# -eq 3 ]] || usage; cmd_prometheus "$@" ;;
        stop-prometheus) [[ $# -eq 1 ]] || usage; cmd_stop_prometheus "$@" ;;
        -h | --help | help) usage ;;
        *) log "unknown subcommand: $cmd"; usage ;;
    esac
}

main "$@"
