#!/bin/sh
# A real OAuth 2.0 authorization server for the tests: django-oauth-toolkit (PyPI) in a
# Django project (tests/servers/oauth/) served by gunicorn on loopback. Token endpoint
# (refresh with rotation), device flow (RFC 8628), authorization code + PKCE with a
# loopback redirect, introspection (RFC 7662, for Dovecot), revocation (RFC 7009).
#
#   tests/servers/oauth.sh prepare                  venv + a migrated template database
#                                                   (idempotent; ~25 s the first time)
#   tests/servers/oauth.sh start DIR PORT USER:PASSWORD...
#                                                   serve on 127.0.0.1:PORT; writes DIR/oauth.env
#   tests/servers/oauth.sh stop DIR
#   tests/servers/oauth.sh expire DIR               every access token expires now (as if the
#                                                   clock had run past it); refresh tokens stay
#
# The environment at start: OAUTH_ACCESS_SECONDS (access-token lifetime, default 3600),
# OAUTH_REFRESH_SECONDS (refresh-token lifetime, default none), OAUTH_ROTATE (1: each
# refresh gives a new refresh token and revokes the old one; 0: keep it), and
# OAUTH_DEVICE_INTERVAL (the polling interval the device flow announces, default 1).
# The venv lives in $OAUTH_HARNESS_HOME (default <repo>/target/oauth-harness).
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
HOME_=${OAUTH_HARNESS_HOME:-${CARGO_TARGET_DIR:-$ROOT/target}/oauth-harness}
VENV=$HOME_/venv
PY=$VENV/bin/python
# Nothing compiled into the source tree.
export PYTHONDONTWRITEBYTECODE=1
REQ=$HERE/oauth/requirements.txt

prepare() {
    mkdir -p "$HOME_"
    # Made again when the pinned versions change.
    if [ -x "$PY" ] && cmp -s "$REQ" "$VENV/requirements.txt" && [ -f "$HOME_/template/oauth.sqlite3" ]; then
        return 0
    fi
    rm -rf "$VENV" "$HOME_/template"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --disable-pip-version-check -r "$REQ"
    mkdir -p "$HOME_/template"
    ( cd "$HERE/oauth" && OAUTH_DIR=$HOME_/template OAUTH_BASE_URL=http://127.0.0.1 \
        DJANGO_SETTINGS_MODULE=settings "$PY" -m django migrate -v 0 )
    cp "$REQ" "$VENV/requirements.txt"
}

case ${1:-} in
prepare)
    prepare
    ;;
start)
    DIR=$2; PORT=$3; shift 3
    [ -x "$PY" ] && [ -f "$HOME_/template/oauth.sqlite3" ] || prepare
    mkdir -p "$DIR"
    cp "$HOME_/template/oauth.sqlite3" "$DIR/oauth.sqlite3"
    export OAUTH_DIR=$DIR OAUTH_BASE_URL=http://127.0.0.1:$PORT DJANGO_SETTINGS_MODULE=settings
    export OAUTH_DJANGO_SECRET=$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')
    # What the server was started with, for `expire` and for a restart by hand.
    env | grep -E '^(OAUTH_[A-Z_]+|DJANGO_SETTINGS_MODULE)=' | grep -v OAUTH_DJANGO_SECRET > "$DIR/server.env"
    ( cd "$HERE/oauth" && "$PY" seed.py "$@" )
    cd "$HERE/oauth"
    "$VENV/bin/gunicorn" --bind "127.0.0.1:$PORT" --workers 1 --threads 8 \
        --pid "$DIR/gunicorn.pid" --error-logfile "$DIR/server.log" --access-logfile "$DIR/access.log" \
        --daemon wsgi:application </dev/null >/dev/null 2>&1
    # Ready when the token endpoint answers (Django loads in ~1 s); 15 s at most.
    "$PY" - "$PORT" "$DIR/server.log" <<'PY'
import sys, time, urllib.error, urllib.request
port, log = sys.argv[1], sys.argv[2]
for _ in range(150):
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/o/token/", data=b"", timeout=2)
    except urllib.error.HTTPError:
        sys.exit(0)  # 400/401 is the token endpoint refusing an empty request: it is up
    except OSError:
        time.sleep(0.1)
sys.stderr.write(f"oauth.sh: the server did not answer on {port}:\n" + open(log).read())
sys.exit(1)
PY
    ;;
stop)
    DIR=$2
    pid=$(cat "$DIR/gunicorn.pid" 2>/dev/null || true)
    if [ -n "$pid" ]; then
        kill "$pid" 2>/dev/null || true
        i=0; while kill -0 "$pid" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
    fi
    ;;
expire)
    DIR=$2
    ( cd "$HERE/oauth" && set -a && . "$DIR/server.env" && set +a && "$PY" -c "
import django; django.setup()
from django.utils import timezone; from datetime import timedelta
from oauth2_provider.models import get_access_token_model
print(get_access_token_model().objects.update(expires=timezone.now() - timedelta(seconds=1)))" )
    ;;
*)
    sed -n '2,21p' "$0" >&2; exit 2
    ;;
esac
