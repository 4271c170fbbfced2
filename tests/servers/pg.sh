#!/bin/sh
# A PostgreSQL cluster of the tests' own, on loopback, in a directory of its own.
#   pg.sh start DIR PORT [TLS]  initdb (as the postgres user when run as root) and start;
#                          with TLS (a folder made by ca.sh), TCP clients must use TLS
#   pg.sh stop DIR [MODE]  stop (MODE: fast, the default, or immediate: a crash)
#   pg.sh restart DIR PORT start again a cluster made before
#   pg.sh standby DIR PORT PRIMARY_PORT  a streaming standby of the cluster on PRIMARY_PORT
#                          (pg_basebackup -R -X stream), started on PORT
#   pg.sh promote DIR      the standby becomes a primary (pg_ctl promote, waited for)
#   pg.sh kill DIR         SIGKILL to the postmaster: the machine's loss, as the clients see it
# DIR must be one the postgres user may enter (e.g. made by `mktemp -d /tmp/…`).
# fsync is off (the tests kill processes, not the machine) unless PG_FSYNC=on (benchmarks).
set -eu
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
[ -n "$bin" ] || { echo "pg.sh: PostgreSQL is not installed (Debian package postgresql)" >&2; exit 1; }
as_pg() {
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
dir=$2
case "$1" in
start)
    port=$3
    [ "$(id -u)" = 0 ] && chown postgres: "$dir"
    as_pg "$bin/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --no-locale --no-sync >"$dir/initdb.log" 2>&1 \
        || { cat "$dir/initdb.log" >&2; exit 1; }
    if [ -n "${4:-}" ]; then
        cp "$4/cert.pem" "$4/key.pem" "$dir/data/"
        chmod 600 "$dir/data/key.pem"
        [ "$(id -u)" = 0 ] && chown postgres: "$dir/data/cert.pem" "$dir/data/key.pem"
        printf 'local all all trust\nhostssl all all 127.0.0.1/32 trust\n' > "$dir/data/pg_hba.conf"
        printf "ssl = on\nssl_cert_file = 'cert.pem'\nssl_key_file = 'key.pem'\n" >> "$dir/data/postgresql.conf"
    fi
    as_pg "$bin/pg_ctl" -D "$dir/data" -l "$dir/log" -w -t 30 \
        -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=${PG_FSYNC:-off} -c max_connections=400 -c shared_buffers=32MB" start >/dev/null \
        || { cat "$dir/log" >&2; exit 1; }
    ;;
restart)
    port=$3
    as_pg "$bin/pg_ctl" -D "$dir/data" -l "$dir/log" -w -t 60 \
        -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=${PG_FSYNC:-off} -c max_connections=400 -c shared_buffers=32MB" start >/dev/null \
        || { cat "$dir/log" >&2; exit 1; }
    ;;
standby)
    port=$3
    [ "$(id -u)" = 0 ] && chown postgres: "$dir"
    as_pg "$bin/pg_basebackup" -h 127.0.0.1 -p "$4" -U postgres -D "$dir/data" -R -X stream -c fast --no-sync >"$dir/basebackup.log" 2>&1 \
        || { cat "$dir/basebackup.log" >&2; exit 1; }
    as_pg "$bin/pg_ctl" -D "$dir/data" -l "$dir/log" -w -t 30 \
        -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=${PG_FSYNC:-off} -c max_connections=400 -c shared_buffers=32MB" start >/dev/null \
        || { cat "$dir/log" >&2; exit 1; }
    ;;
promote)
    as_pg "$bin/pg_ctl" -D "$dir/data" -w -t 30 promote >/dev/null || { cat "$dir/log" >&2; exit 1; }
    ;;
kill)
    kill -9 "$(head -n 1 "$dir/data/postmaster.pid")"
    ;;
stop)
    as_pg "$bin/pg_ctl" -D "$dir/data" -m "${3:-fast}" -w -t 30 stop >/dev/null 2>&1 || true
    ;;
*)
    echo "usage: pg.sh start DIR PORT [TLS] | restart DIR PORT | standby DIR PORT PRIMARY_PORT | promote DIR | kill DIR | stop DIR [MODE]" >&2; exit 2
    ;;
esac
