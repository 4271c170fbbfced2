#!/bin/sh
# A real OAuth 2.0 authorization server for the tests: django-oauth-toolkit (PyPI) in a
# Django project (tests/servers/oauth/) served by gunicorn on loopback. Token endpoint
# (refresh with rotation), device flow (RFC 8628), authorization code + PKCE with a
# loopback redirect, introspection (RFC 7662, for Dovecot), revocation (RFC 7009).
#
#   tests/servers/oauth.sh prepare                  venv + a migrated template database
#                                                   (idempotent; 30–60 s the first time)
#   tests/servers/oauth.sh start DIR PORT USER:PASSWORD...
#                                                   serve on 127.0.0.1:PORT; writes DIR/oauth.env
#   tests/servers/oauth.sh stop DIR
#   tests/servers/oauth.sh restart DIR              the same server again (same port, same
#                                                   database and tokens), after a stop; the
#                                                   settings below given now win over start's
#   tests/servers/oauth.sh lifetime DIR SECONDS     access tokens issued from now on live SECONDS
#   tests/servers/oauth.sh expire DIR               every access token expires now (as if the
#                                                   clock had run past it); refresh tokens stay
#   tests/servers/oauth.sh revoke DIR [USER]        revokes every refresh token (of USER), and
#                                                   with each its access token
#   tests/servers/oauth.sh tokens DIR               {"access_live":…,"access_all":…,
#                                                   "refresh_live":…,"refresh_revoked":…}
# (expire, revoke and tokens print JSON; they work on a stopped server too)
#
# The environment at start: OAUTH_ACCESS_SECONDS (access-token lifetime, default 3600),
# OAUTH_REFRESH_SECONDS (refresh-token lifetime, default none), OAUTH_ROTATE (1: each
# refresh gives a new refresh token and revokes the old one; 0: keep it),
# OAUTH_DEVICE_INTERVAL (the polling interval the device flow announces, default 1), and
# OAUTH_TOKEN_LENGTH (access tokens' length, default 1800 like Microsoft's JWTs; 0: 30).
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

ready() {
    [ -x "$PY" ] && cmp -s "$REQ" "$VENV/requirements.txt" && [ -f "$HOME_/template/oauth.sqlite3" ] \
        && "$PY" -c '' 2>/dev/null
}

prepare() {
    mkdir -p "$HOME_"
    ready && return 0
    # Tests run in parallel: one makes the venv, the others wait for it.
    exec 9>"$HOME_/.lock"
    flock 9
    if ready; then flock -u 9; return 0; fi
    rm -rf "$VENV" "$HOME_/template"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --disable-pip-version-check -r "$REQ"
    mkdir -p "$HOME_/template"
    ( cd "$HERE/oauth" && OAUTH_DIR=$HOME_/template OAUTH_BASE_URL=http://127.0.0.1 \
        DJANGO_SETTINGS_MODULE=settings "$PY" -m django migrate -v 0 )
    cp "$REQ" "$VENV/requirements.txt"
    flock -u 9
}

serve() {
    cd "$HERE/oauth"
    "$VENV/bin/gunicorn" --bind "127.0.0.1:$PORT" --workers 1 --threads 8 \
        --pid "$DIR/gunicorn.pid" --error-logfile "$DIR/server.log" --access-logfile "$DIR/access.log" \
        --daemon wsgi:application </dev/null >/dev/null 2>&1
    # Ready when *this* server answers: its introspection endpoint takes its own Dovecot
    # client's secret (another test's server on a reused port would refuse it). 15 s at most.
    if ! "$PY" - "$DIR" <<'PY'
import base64, json, sys, time, urllib.error, urllib.request
d = sys.argv[1]
e = json.load(open(f"{d}/oauth.json"))
cred = base64.b64encode(f"{e['OAUTH_DOVECOT_CLIENT_ID']}:{e['OAUTH_DOVECOT_CLIENT_SECRET']}".encode()).decode()
req = urllib.request.Request(e["OAUTH_INTROSPECT_URL"], data=b"token=probe",
                             headers={"Authorization": "Basic " + cred})
why = "no answer"
for _ in range(150):
    try:
        if json.load(urllib.request.urlopen(req, timeout=2)).get("active") is False:
            sys.exit(0)
    except urllib.error.HTTPError as err:
        why = f"{err.code} from the introspection endpoint: another server on this port?"
    except OSError as err:
        why = str(err)
    if "Connection in use" in open(f"{d}/server.log").read():
        break  # the port is taken: the caller tries another
    time.sleep(0.1)
sys.stderr.write(f"oauth.sh: the server in {d} is not up ({why}):\n" + open(f"{d}/server.log").read())
sys.exit(1)
PY
    then
        kill -QUIT "$(cat "$DIR/gunicorn.pid" 2>/dev/null)" 2>/dev/null || true
        exit 1
    fi
}

# Runs an administrator's operation (oauth/ops.py) on the server in DIR: over HTTP
# while it runs (~0.05 s), else in a process of its own on its database (~1 s).
admin() {
    DIR=$1; shift
    "$PY" - "$DIR" "$@" <<'PY' && return 0
import json, sys, urllib.error, urllib.parse, urllib.request
d, op, user = sys.argv[1], sys.argv[2], (sys.argv[3] if len(sys.argv) > 3 else "")
port = [l.split("=", 1)[1].strip() for l in open(f"{d}/server.env") if l.startswith("PORT=")][0]
secret = open(f"{d}/admin-secret").read().strip()
req = urllib.request.Request(f"http://127.0.0.1:{port}/test-admin/{op}/",
                             data=urllib.parse.urlencode({"user": user}).encode(),
                             headers={"Authorization": "Bearer " + secret})
try:
    print(json.dumps(json.load(urllib.request.urlopen(req, timeout=20))))
except urllib.error.URLError as e:
    sys.exit(1 if isinstance(e, urllib.error.HTTPError) else 3)
PY
    [ $? = 3 ] || return 1
    ( cd "$HERE/oauth" && set -a && . "$DIR/server.env" && set +a && "$PY" ops.py "$@" )
}

case ${1:-} in
prepare)
    prepare
    ;;
start)
    DIR=$2; PORT=$3; shift 3
    prepare
    mkdir -p "$DIR"
    cp "$HOME_/template/oauth.sqlite3" "$DIR/oauth.sqlite3"
    export OAUTH_DIR=$DIR OAUTH_BASE_URL=http://127.0.0.1:$PORT DJANGO_SETTINGS_MODULE=settings
    export OAUTH_DJANGO_SECRET=$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')
    # What the server was started with, for `expire` and for a restart by hand.
    env | grep -E '^(OAUTH_[A-Z_]+|DJANGO_SETTINGS_MODULE)=' | grep -v OAUTH_DJANGO_SECRET > "$DIR/server.env"
    ( cd "$HERE/oauth" && "$PY" seed.py "$@" )
    echo "PORT=$PORT" >> "$DIR/server.env"
    ( umask 077 && od -An -N24 -tx1 /dev/urandom | tr -d ' \n' > "$DIR/admin-secret" )
    serve
    ;;
stop)
    DIR=$2
    pid=$(cat "$DIR/gunicorn.pid" 2>/dev/null || true)
    if [ -n "$pid" ]; then
        # QUIT: gunicorn's quick shutdown (TERM waits for Dovecot's kept-alive connections).
        kill -QUIT "$pid" 2>/dev/null || true
        i=0; while kill -0 "$pid" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
    fi
    ;;
restart)
    DIR=$2
    now=$(env | grep -E '^OAUTH_(ACCESS_SECONDS|REFRESH_SECONDS|ROTATE|DEVICE_INTERVAL|TOKEN_LENGTH)=[0-9]*$' || true)
    set -a; . "$DIR/server.env"; eval "$now"; set +a
    export OAUTH_DJANGO_SECRET=$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')
    serve
    ;;
lifetime)
    echo "$3" > "$2/access-seconds.tmp" && mv "$2/access-seconds.tmp" "$2/access-seconds"
    ;;
expire|tokens)
    admin "$2" "$1"
    ;;
revoke)
    DIR=$2; shift 2
    admin "$DIR" revoke "$@"
    ;;
*)
    awk 'NR > 1 && /^#/ { print; next } NR > 1 { exit }' "$0" >&2; exit 2
    ;;
esac
