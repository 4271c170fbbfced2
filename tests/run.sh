#!/bin/sh
# Every test of esurety. Works on a fresh Debian machine as root with nothing done first:
# installs what the tests need when it is missing (a C compiler for SQLite, and Dovecot,
# Postfix and OpenSSL for the tests against real mail servers), then runs the whole suite.
set -eu
cd "$(dirname "$0")/.."

need=""
command -v cc >/dev/null 2>&1 || need="$need gcc libc6-dev"
command -v dovecot >/dev/null 2>&1 && [ -x /usr/lib/dovecot/imap ] && [ -x /usr/lib/dovecot/lmtp ] || need="$need dovecot-core dovecot-imapd dovecot-lmtpd"
command -v postfix >/dev/null 2>&1 || need="$need postfix"
command -v openssl >/dev/null 2>&1 || need="$need openssl"
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

cargo test --locked "$@"
