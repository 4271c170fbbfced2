#!/bin/sh
# Every test of esurety. Works on a fresh Debian machine as root with nothing done first:
# installs what the tests need when it is missing (a C compiler for SQLite; Dovecot,
# Postfix and OpenSSL for the tests against real mail servers; Chromium, its WebDriver and
# a Japanese font for the tests of the web pages in a real browser), then runs the suite.
set -eu
cd "$(dirname "$0")/.."

need=""
command -v cc >/dev/null 2>&1 || need="$need gcc libc6-dev"
command -v dovecot >/dev/null 2>&1 && [ -x /usr/lib/dovecot/imap ] && [ -x /usr/lib/dovecot/lmtp ] || need="$need dovecot-core dovecot-imapd dovecot-lmtpd"
command -v postfix >/dev/null 2>&1 || need="$need postfix"
command -v openssl >/dev/null 2>&1 || need="$need openssl"
command -v chromium >/dev/null 2>&1 || need="$need chromium"
command -v chromedriver >/dev/null 2>&1 || need="$need chromium-driver"
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

# The benchmarks are not run here (`cargo bench` does, in release), but they must still
# build: in the test profile this compiles only their own files.
cargo test --locked --benches --no-run

# Each test's time: with cargo-nextest (on the machines this project runs on) every test is
# reported with its time and the ten slowest are listed at the end; without it, cargo test.
# Both build the same test profile as `cargo test`, so nothing is compiled twice.
if cargo nextest --version >/dev/null 2>&1; then
    log=$(mktemp)
    { rc=0; cargo nextest run --locked --no-fail-fast --status-level pass --final-status-level fail "$@" || rc=$?; echo "$rc" >"$log.rc"; } 2>&1 | tee "$log"
    echo "tests/run.sh: the slowest tests:"
    grep -E '^ *(PASS|FAIL|SIGKILL|TIMEOUT) +\[' "$log" | sed -E 's/^ *([A-Z]+) +\[ *([0-9.]+)s\]( +\( *[0-9]+\/[0-9]+\))? +/\2s \1 /' | sort -u | sort -rn | head -10
    status=$(cat "$log.rc")
    rm -f "$log" "$log.rc"
    exit "$status"
fi
cargo test --locked "$@"
