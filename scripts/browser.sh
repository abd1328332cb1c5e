#!/usr/bin/env bash
# Headless Chromium for the agents' console browser tests, run through playwright-core.
#
# The browser comes from Debian (chromium, chromium-driver, fonts-liberation), installed with apt-get.
# It is never downloaded by Playwright: that needs a download host this machine cannot reach, so
# never run `npx playwright install`. playwright-core@1.65.1 (Apache-2.0; it has no dependencies
# and no install scripts) is installed with npm into the cache, and its package-lock integrity is
# checked against the sha512 pinned below. axe-core@4.14.1 (MPL-2.0; no dependencies, no install
# scripts), the accessibility rules the console test runs in the page, is installed the same way
# into its own cache directory.
#
# Usage:
#   scripts/browser.sh install        install Chromium (apt-get, if missing), playwright-core and axe-core (cached)
#   scripts/browser.sh env            print export lines for a test: eval "$(scripts/browser.sh env)"
#   scripts/browser.sh smoke [PNG]    install, then run scripts/browser-smoke.mjs (screenshot to PNG)
#
# Notes:
#   - `env` prints CALLAHEAD_CHROMIUM (the browser), CALLAHEAD_CHROMEDRIVER, NODE_PATH (for
#     require) and CALLAHEAD_PLAYWRIGHT, the absolute path of playwright-core's ESM entry: Node's
#     `import` ignores NODE_PATH, so an .mjs test does
#       const { chromium } = await import(process.env.CALLAHEAD_PLAYWRIGHT);
#       const browser = await chromium.launch({ executablePath: process.env.CALLAHEAD_CHROMIUM,
#           args: ['--headless', '--no-sandbox', '--disable-gpu', ...] });
#     with a fresh --user-data-dir per run (see scripts/browser-smoke.mjs).
#   - `env` also prints CALLAHEAD_AXE, the absolute path of axe-core's axe.min.js: a test reads
#     it and injects it into the page (page.addScriptTag({ content }) in a context created with
#     bypassCSP, since the console's CSP refuses inline scripts), then calls axe.run().
#   - Chromium's version is whatever Debian's archive serves (security updates move it). The
#     install logs the version. It needs root, or sudo, to run apt-get.
#   - Every step is skipped when already done, so a cached `install` takes well under a second.
#
# Environment:
#   CALLAHEAD_CHROMIUM               browser binary (default: /usr/bin/chromium)
#   CALLAHEAD_TEST_PLAYWRIGHT_CACHE  cache dir (default: ${XDG_CACHE_HOME:-$HOME/.cache}/callahead/playwright-core-1.65.1)
#   CALLAHEAD_TEST_AXE_CACHE         cache dir (default: ${XDG_CACHE_HOME:-$HOME/.cache}/callahead/axe-core-4.14.1)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

CHROMIUM="${CALLAHEAD_CHROMIUM:-/usr/bin/chromium}"
CHROMEDRIVER="/usr/bin/chromedriver"
APT_PACKAGES=(chromium chromium-driver fonts-liberation)

PLAYWRIGHT_VERSION="1.65.1"
PLAYWRIGHT_INTEGRITY="sha512-hqPpz7blSMPxWVdoeE1yiBSzXsKiVOd2k+kjCvmUywD2GPO2Dd9HfcWnq9NN0GHbNZDFgZ9JfBFr+X5/BLo0qw=="

CACHE_BASE="${XDG_CACHE_HOME:-$HOME/.cache}/callahead"
CACHE_DIR="${CALLAHEAD_TEST_PLAYWRIGHT_CACHE:-$CACHE_BASE/playwright-core-$PLAYWRIGHT_VERSION}"
PW_DIR="$CACHE_DIR/node_modules/playwright-core"
PW_ENTRY="$PW_DIR/index.mjs"

AXE_VERSION="4.14.1"
AXE_INTEGRITY="sha512-FHfa+lmNjQZfJz1q8wKqIDwC6DExcHt/pkjNQb09a3NPjCKg2rhu5qb2S4r76ASyFNNtuFooJpZe37OgudVGtQ=="
AXE_CACHE_DIR="${CALLAHEAD_TEST_AXE_CACHE:-$CACHE_BASE/axe-core-$AXE_VERSION}"
AXE_ENTRY="$AXE_CACHE_DIR/node_modules/axe-core/axe.min.js"

SCRIPT_NAME=browser.sh
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

install_chromium() {
    if [[ -x "$CHROMIUM" && -x "$CHROMEDRIVER" ]]; then
        return 0
    fi
    local sudo=()
    if [[ "$(id -u)" -ne 0 ]]; then
        command -v sudo >/dev/null 2>&1 || die "installing ${APT_PACKAGES[*]} needs root or sudo"
        sudo=(sudo)
    fi
    command -v apt-get >/dev/null 2>&1 || die "no apt-get: install Chromium and set CALLAHEAD_CHROMIUM"
    log "installing ${APT_PACKAGES[*]} with apt-get (about 130 MB to download)"
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq \
        || die "apt-get update failed"
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        -o Dpkg::Use-Pty=0 "${APT_PACKAGES[@]}" >/dev/null \
        || die "apt-get install ${APT_PACKAGES[*]} failed"
    [[ -x "$CHROMIUM" ]] || die "$CHROMIUM is missing after installing chromium"
}

# npm_works DIR INTEGRITY ENTRY: the package is installed in DIR and its integrity was checked.
npm_works() {
    [[ -f "$3" ]] && [[ -f "$1/.installed" ]] && [[ "$(cat "$1/.installed")" == "$2" ]]
}

playwright_works() { npm_works "$CACHE_DIR" "$PLAYWRIGHT_INTEGRITY" "$PW_ENTRY"; }
axe_works() { npm_works "$AXE_CACHE_DIR" "$AXE_INTEGRITY" "$AXE_ENTRY"; }

# do_install_npm NAME VERSION INTEGRITY DIR FILE: installs NAME@VERSION (no scripts) into
# DIR/node_modules, after checking its package-lock integrity and that it has FILE. Runs in a
# subshell so the EXIT trap removes the temporary directory on any failure.
do_install_npm() (
    name="$1" version="$2" integrity="$3" dir="$4" file="$5"
    npm_works "$dir" "$integrity" "$dir/node_modules/$name/$file" && exit 0
    command -v npm >/dev/null 2>&1 || die "npm is needed to install $name (apt-get install npm)"
    tmp="$(mktemp -d "$dir/.install.XXXXXX")"
    trap 'rm -rf "$tmp"' EXIT
    log "installing $name@$version from the npm registry"
    # PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD: belt and braces, playwright-core downloads nothing itself.
    PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm install --prefix "$tmp" --cache "$tmp/npm-cache" \
        --no-audit --no-fund --no-save --ignore-scripts --loglevel=error \
        "$name@$version" >/dev/null \
        || die "npm install $name@$version failed"
    actual="$(node -e '
        const lock = require(process.argv[1]);
        const p = lock.packages && lock.packages[`node_modules/${process.argv[2]}`];
        console.log(p ? `${p.version} ${p.integrity}` : "");
    ' "$tmp/node_modules/.package-lock.json" "$name")"
    [[ "$actual" == "$version $integrity" ]] \
        || die "$name integrity mismatch: expected $version $integrity, got '$actual'"
    [[ -f "$tmp/node_modules/$name/$file" ]] || die "$name@$version has no $file"
    rm -rf "$tmp/npm-cache" "$dir/node_modules"
    mv "$tmp/node_modules" "$dir/node_modules"
    echo "$integrity" >"$dir/.installed"
)

cmd_install() {
    install_chromium
    mkdir -p "$CACHE_DIR" "$AXE_CACHE_DIR"
    with_lock "$CACHE_DIR/.lock" do_install_npm playwright-core "$PLAYWRIGHT_VERSION" \
        "$PLAYWRIGHT_INTEGRITY" "$CACHE_DIR" index.mjs
    playwright_works || die "$PW_DIR is not playwright-core@$PLAYWRIGHT_VERSION"
    with_lock "$AXE_CACHE_DIR/.lock" do_install_npm axe-core "$AXE_VERSION" \
        "$AXE_INTEGRITY" "$AXE_CACHE_DIR" axe.min.js
    axe_works || die "$AXE_CACHE_DIR is not axe-core@$AXE_VERSION"
    log "$("$CHROMIUM" --version 2>/dev/null || echo "$CHROMIUM (version unknown)"), playwright-core $PLAYWRIGHT_VERSION, axe-core $AXE_VERSION"
}

cmd_env() {
    [[ -x "$CHROMIUM" ]] || die "$CHROMIUM is missing: run scripts/browser.sh install"
    playwright_works || die "playwright-core@$PLAYWRIGHT_VERSION is not in $CACHE_DIR: run scripts/browser.sh install"
    axe_works || die "axe-core@$AXE_VERSION is not in $AXE_CACHE_DIR: run scripts/browser.sh install"
    printf 'export CALLAHEAD_CHROMIUM=%q\n' "$CHROMIUM"
    printf 'export CALLAHEAD_CHROMEDRIVER=%q\n' "$CHROMEDRIVER"
    printf 'export NODE_PATH=%q\n' "$CACHE_DIR/node_modules${NODE_PATH:+:$NODE_PATH}"
    printf 'export CALLAHEAD_PLAYWRIGHT=%q\n' "$PW_ENTRY"
    printf 'export CALLAHEAD_AXE=%q\n' "$AXE_ENTRY"
}

cmd_smoke() {
    local png="${1:-${TMPDIR:-/tmp}/callahead-browser-smoke.png}"
    cmd_install
    eval "$(cmd_env)"
    node "$ROOT/scripts/browser-smoke.mjs" "$png"
}

main() {
    [[ $# -ge 1 ]] || usage
    local cmd="$1"
    shift
    case "$cmd" in
        install) [[ $# -eq 0 ]] || usage; cmd_install ;;
        env) [[ $# -eq 0 ]] || usage; cmd_env ;;
        smoke) [[ $# -le 1 ]] || usage; cmd_smoke "$@" ;;
        -h | --help | help) usage ;;
        *) log "unknown subcommand: $cmd"; usage ;;
    esac
}

main "$@"
