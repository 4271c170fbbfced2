#!/bin/sh
# Every test of esurety. Works on a fresh Debian machine as root with nothing done first:
# installs what the tests need when it is missing (a C compiler for SQLite; Dovecot,
# Postfix and OpenSSL for the tests against real mail servers; Chromium, its WebDriver and
# a Japanese font for the tests of the web pages in a real browser; Prometheus and its
# promtool for the metrics; pdfsig, certutil and pyHanko for the signed PDFs, zbarimg for
# their QR code, lighttpd for the timestamp authority; PostgreSQL for the company's store;
# Python's venv for the OAuth authorization server), then runs the suite twice: on SQLite
# files, and on PostgreSQL (a cluster of the tests' own on loopback, stopped at the end).
set -eu
cd "$(dirname "$0")/.."

need=""
command -v cc >/dev/null 2>&1 || need="$need gcc libc6-dev"
command -v dovecot >/dev/null 2>&1 && [ -x /usr/lib/dovecot/imap ] && [ -x /usr/lib/dovecot/lmtp ] || need="$need dovecot-core dovecot-imapd dovecot-lmtpd"
command -v postfix >/dev/null 2>&1 || need="$need postfix"
command -v openssl >/dev/null 2>&1 || need="$need openssl"
# The OAuth tests' authorization server runs in a venv (tests/servers/oauth.sh prepare).
command -v python3 >/dev/null 2>&1 && python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || need="$need python3 python3-venv"
command -v systemd-analyze >/dev/null 2>&1 || need="$need systemd"
# The signed PDFs' validators: poppler's pdfsig with NSS's certutil (pyHanko comes from
# PyPI: tests/servers/pades.sh prepare).
command -v pdfsig >/dev/null 2>&1 || need="$need poppler-utils"
command -v certutil >/dev/null 2>&1 || need="$need libnss3-tools"
# zbar's zbarimg reads the QR code of a rendered page.
command -v zbarimg >/dev/null 2>&1 || need="$need zbar-tools"
# The RFC 3161 timestamp authority of the tests: OpenSSL's `ts` behind lighttpd (CGI).
command -v lighttpd >/dev/null 2>&1 || need="$need lighttpd"
command -v promtool >/dev/null 2>&1 && command -v prometheus >/dev/null 2>&1 || need="$need prometheus"
command -v chromium >/dev/null 2>&1 || need="$need chromium"
command -v chromedriver >/dev/null 2>&1 || need="$need chromium-driver"
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need="$need postgresql"
[ -e /usr/share/fonts/opentype/ipafont-gothic/ipag.ttf ] || [ -e /usr/share/fonts/truetype/fonts-japanese-gothic.ttf ] || need="$need fonts-ipafont-gothic"
if [ -n "$need" ]; then
    if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
        echo "tests/run.sh: please install:$need" >&2
        exit 1
    fi
    echo "tests/run.sh: installing:$need"
    # The packages must not start system-wide servers: the tests run their own.
    echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $need >/dev/null
    rm -f /usr/sbin/policy-rc.d
fi

# A real OAuth 2.0 authorization server for the OAuth tests (django-oauth-toolkit from
# PyPI in a venv under target/oauth-harness; quick when already made).
tests/servers/oauth.sh prepare
# pyHanko, which validates the signed PDFs (a venv under target/pades-harness).
tests/servers/pades.sh prepare

# The benchmarks are not run here (`cargo bench` does, in release), but they must still
# build: in the test profile this compiles only their own files.
cargo test --locked --benches --no-run

# One PostgreSQL cluster for the run (each test makes its own database in it; the tests
# that stop or crash a server start their own).
pgdir=$(mktemp -d /tmp/esurety-pg.XXXXXX)
pgport=""
for try in 1 2 3 4 5; do
    port=$(( 20000 + $(od -An -N2 -tu2 /dev/urandom) % 40000 ))
    if tests/servers/pg.sh start "$pgdir" "$port" 2>"$pgdir.err"; then pgport=$port; break; fi
    tests/servers/pg.sh stop "$pgdir" immediate; rm -rf "$pgdir"; pgdir=$(mktemp -d /tmp/esurety-pg.XXXXXX)
done
[ -n "$pgport" ] || { cat "$pgdir.err" >&2; echo "tests/run.sh: PostgreSQL did not start" >&2; exit 1; }
rm -f "$pgdir.err"
trap 'tests/servers/pg.sh stop "$pgdir" immediate; rm -rf "$pgdir"' EXIT
export ESURETY_TEST_PG="postgres://postgres@127.0.0.1:$pgport"

# The second pass: the same tests on PostgreSQL (`ESURETY_TEST_STORE=postgres` makes each
# test's store a database of its own). Not again: the browser's (they test pages, not the
# store), the fuzz regressions (the reader), postgres.rs (on PostgreSQL in both) and
# failover.rs (on clusters of its own in both).
pg_filter='not (test(/browser/) | test(/fuzz_regressions::/) | test(/^postgres::/) | test(/^failover::/))'

# Each test's time: with cargo-nextest (on the machines this project runs on) every test is
# reported with its time and the ten slowest are listed at the end; without it, cargo test.
# Both build the same test profile as `cargo test`, so nothing is compiled twice.
if cargo nextest --version >/dev/null 2>&1; then
    log=$(mktemp)
    { rc=0; cargo nextest run --locked --no-fail-fast --status-level pass --final-status-level fail "$@" || rc=$?; echo "$rc" >"$log.rc"; } 2>&1 | tee "$log"
    echo "tests/run.sh: the same tests on PostgreSQL"
    { rc=0; ESURETY_TEST_STORE=postgres cargo nextest run --locked --no-fail-fast --status-level pass --final-status-level fail -E "$pg_filter" "$@" || rc=$?; echo "$rc" >"$log.rc2"; } 2>&1 | tee -a "$log"
    echo "tests/run.sh: the slowest tests:"
    grep -E '^ *(PASS|FAIL|SIGKILL|TIMEOUT) +\[' "$log" | sed -E 's/^ *([A-Z]+) +\[ *([0-9.]+)s\]( +\( *[0-9]+\/[0-9]+\))? +/\2s \1 /' | sort -u | sort -rn | head -10
    status=$(cat "$log.rc")
    [ "$status" = 0 ] && status=$(cat "$log.rc2")
    rm -f "$log" "$log.rc" "$log.rc2"
    exit "$status"
fi
cargo test --locked "$@"
ESURETY_TEST_STORE=postgres cargo test --locked --test it "$@" -- --skip browser --skip fuzz_regressions:: --skip postgres:: --skip failover::
