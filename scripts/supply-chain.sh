#!/usr/bin/env bash
# The supply chain of the build: what the dependency tree may contain, and what it contains.
#
# Usage:
#   scripts/supply-chain.sh check      cargo-deny (pinned, installed once into a cache): licences
#                                      (deny.toml's reviewed list), bans (one TLS stack: no
#                                      rustls, ring, aws-lc-rs or vendored OpenSSL), sources
#                                      (crates.io only); then advisories, where the RustSec
#                                      database can be fetched (it lives on GitHub)
#   scripts/supply-chain.sh sbom DIR   a CycloneDX SBOM (JSON) of the callahead crate's
#                                      dependencies into DIR (cargo-cyclonedx, pinned, cached)
#
# Notes:
#   - The cache is ${XDG_CACHE_HOME:-$HOME/.cache}/callahead/<tool>-<version>.
#   - Where GitHub cannot be reached (these build machines reach only the package registries),
#     the advisory check says so and is skipped; run `scripts/supply-chain.sh check` where it
#     can be (a release pipeline with internet access) before shipping an image.
set -euo pipefail
SCRIPT_NAME=supply-chain.sh
source "$(dirname "$0")/lib.sh"
cd "$(dirname "$0")/.."

DENY_VERSION="0.20.2"
CYCLONEDX_VERSION="0.5.9"
CACHE_BASE="${XDG_CACHE_HOME:-$HOME/.cache}/callahead"

# tool NAME VERSION: the path of the tool's binary, installed from crates.io once.
tool() {
    local name=$1 version=$2 root="$CACHE_BASE/$1-$2"
    if [[ ! -x "$root/bin/$name" ]]; then
        mkdir -p "$CACHE_BASE"
        log "installing $name $version (once, into $root)"
        with_lock "$CACHE_BASE/$name.lock" cargo install --quiet --locked "$name" --version "$version" --root "$root" >&2 \
            || die "cargo install $name $version failed"
    fi
    echo "$root/bin/$name"
}

case "${1:-}" in
    check)
        deny=$(tool cargo-deny "$DENY_VERSION")
        "$deny" check licenses bans sources
        if "$deny" fetch db >/dev/null 2>&1; then
            "$deny" check advisories
        else
            log "advisories: NOT CHECKED here: the RustSec database (github.com/RustSec/advisory-db) cannot be fetched from this machine; run this where it can"
        fi
        ;;
    sbom)
        [[ $# -eq 2 ]] || usage
        cyclonedx=$(tool cargo-cyclonedx "$CYCLONEDX_VERSION")
        mkdir -p "$2"
        "$cyclonedx" cyclonedx --format json --override-filename callahead.cdx >&2
        mv callahead.cdx.json "$2/"
        log "SBOM: $2/callahead.cdx.json"
        ;;
    *) usage ;;
esac
