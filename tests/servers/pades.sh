#!/bin/sh
# Independent validators of PAdES signatures for the tests: pyHanko (PyPI, in a venv) and
# poppler's pdfsig (Debian) with an NSS database of the trusted certificates.
#
#   tests/servers/pades.sh prepare                     the venv (idempotent; ~20 s the first time)
#   tests/servers/pades.sh pyhanko FILE TRUST.pem...   pyHanko's judgment, one line:
#                                                      "esurety:<fingerprint>:VALID" or …:INVALID…
#   tests/servers/pades.sh pyhanko-pretty FILE TRUST.pem...   pyHanko's whole report
#   tests/servers/pades.sh pdfsig FILE TRUST.pem...    pdfsig's report, trusting the certificates
#                                                      given (an NSS database made for the call)
# pyHanko exits 1 on an invalid signature and pdfsig 0 whatever it finds: callers read what
# they print. The venv lives in $PADES_HARNESS_HOME (default <target>/pades-harness).
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
HOME_=${PADES_HARNESS_HOME:-${CARGO_TARGET_DIR:-$ROOT/target}/pades-harness}
VENV=$HOME_/venv
REQ="pyHanko==0.38.0 pyhanko-cli==0.6.0"
export PYTHONDONTWRITEBYTECODE=1

ready() {
    [ -x "$VENV/bin/pyhanko" ] && [ "$(cat "$VENV/requirements" 2>/dev/null)" = "$REQ" ]
}

prepare() {
    mkdir -p "$HOME_"
    ready && return 0
    exec 9>"$HOME_/.lock"
    flock 9
    if ready; then flock -u 9; return 0; fi
    rm -rf "$VENV"
    python3 -m venv "$VENV"
    # shellcheck disable=SC2086
    "$VENV/bin/pip" install -q --disable-pip-version-check $REQ
    echo "$REQ" > "$VENV/requirements"
    flock -u 9
}

cmd=$1; shift
case $cmd in
prepare) prepare ;;
pyhanko)
    prepare
    file=$1; shift
    set -- "$@"
    trust=""
    for t in "$@"; do trust="$trust --trust $t"; done
    # shellcheck disable=SC2086
    "$VENV/bin/pyhanko" sign validate --executive-summary --no-revocation-check $trust --trust-replace "$file" 2>&1 || true
    ;;
pyhanko-pretty)
    prepare
    file=$1; shift
    trust=""
    for t in "$@"; do trust="$trust --trust $t"; done
    # shellcheck disable=SC2086
    "$VENV/bin/pyhanko" sign validate --pretty-print --no-revocation-check $trust --trust-replace "$file" 2>&1 || true
    ;;
pdfsig)
    file=$1; shift
    db=$(mktemp -d)
    trap 'rm -rf "$db"' EXIT
    certutil -N -d "sql:$db" --empty-password
    n=0
    for t in "$@"; do n=$((n + 1)); certutil -A -d "sql:$db" -n "trust$n" -t "CT,C,C" -i "$t"; done
    pdfsig -nssdir "sql:$db" "$file" 2>&1 || true
    ;;
*) echo "tests/servers/pades.sh: unknown command $cmd" >&2; exit 2 ;;
esac
