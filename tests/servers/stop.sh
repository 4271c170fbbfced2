#!/bin/sh
# Stops the servers tests/servers/start.sh started in DIR.
DIR=$1
postfix -c "$DIR/pf" stop </dev/null >/dev/null 2>&1 || true
doveadm -c "$DIR/dovecot/dovecot.conf" stop </dev/null >/dev/null 2>&1 || kill "$(cat "$DIR/dovecot/run/master.pid" 2>/dev/null)" 2>/dev/null || true
