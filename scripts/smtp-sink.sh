#!/usr/bin/env bash
# A real SMTP server on loopback that records what it receives: aiosmtpd (PyPI, pinned),
# installed once into a cached virtualenv, storing every message in a Maildir. The same
# virtualenv has dkimpy (pinned), to verify DKIM signatures (`verify-dkim`).
#
# Usage:
#   scripts/smtp-sink.sh install              install aiosmtpd (cached); prints its python
#   scripts/smtp-sink.sh run PORT MAILDIR     run the server in the foreground on 127.0.0.1:PORT;
#                                             recipients at reject.example are refused with a
#                                             550 quoting the address (scripts/smtp_sink_handler.py)
#   scripts/smtp-sink.sh verify-dkim FILE PUBKEY   verify FILE's DKIM signature against PUBKEY
#                                             (base64 DER), standing in for the DNS record
#
# Notes:
#   - Messages land in MAILDIR/new/ (one file each, as received).
#   - The cache is ${XDG_CACHE_HOME:-$HOME/.cache}/callahead/aiosmtpd-<version>.
set -euo pipefail
SCRIPT_NAME=smtp-sink.sh
source "$(dirname "$0")/lib.sh"

AIOSMTPD_VERSION="1.4.6"
DKIMPY_VERSION="1.1.8"
CACHE_BASE="${XDG_CACHE_HOME:-$HOME/.cache}/callahead"
VENV="$CACHE_BASE/aiosmtpd-$AIOSMTPD_VERSION"

installed() { [[ -x "$VENV/bin/python" ]] && "$VENV/bin/python" -c "import aiosmtpd, dkim" 2>/dev/null; }

do_install() (
    installed && exit 0
    log "installing aiosmtpd $AIOSMTPD_VERSION into $VENV"
    rm -rf "$VENV"
    python3 -m venv "$VENV" || die "python3 -m venv failed (Debian: apt-get install python3-venv)"
    "$VENV/bin/pip" install --quiet "aiosmtpd==$AIOSMTPD_VERSION" "dkimpy==$DKIMPY_VERSION" \
        || die "pip install aiosmtpd dkimpy failed"
)

case "${1:-}" in
    install)
        mkdir -p "$CACHE_BASE"
        with_lock "$CACHE_BASE/aiosmtpd.lock" do_install
        installed || die "aiosmtpd is not importable from $VENV"
        echo "$VENV/bin/python"
        ;;
    run)
        [[ $# -eq 3 ]] || usage
        installed || die "run scripts/smtp-sink.sh install first"
        mkdir -p "$3/new" "$3/tmp" "$3/cur" # a Maildir
        export PYTHONPATH
        PYTHONPATH="$(cd "$(dirname "$0")" && pwd)"
        exec "$VENV/bin/python" -m aiosmtpd -n -l "127.0.0.1:$2" -c smtp_sink_handler.Sink "$3"
        ;;
    verify-dkim)
        [[ $# -eq 3 ]] || usage
        installed || die "run scripts/smtp-sink.sh install first"
        exec "$VENV/bin/python" -c '
import sys, dkim
raw = open(sys.argv[1], "rb").read()
record = ("v=DKIM1; k=rsa; p=" + sys.argv[2]).encode()
ok = dkim.verify(raw, dnsfunc=lambda name, timeout=5: record)
print("dkim: pass" if ok else "dkim: FAIL")
sys.exit(0 if ok else 1)' "$2" "$3"
        ;;
    *) usage ;;
esac
