#!/bin/sh
# Every test of esurety. Works on a fresh Debian machine as root with nothing done first:
# installs what the tests need when it is missing, then runs the whole suite.
set -eu
cd "$(dirname "$0")/.."

need=""
command -v cc >/dev/null 2>&1 || need="$need gcc libc6-dev"
if [ -n "$need" ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "tests/run.sh: installing:$need"
        DEBIAN_FRONTEND=noninteractive apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $need
    else
        echo "tests/run.sh: please install:$need" >&2
        exit 1
    fi
fi

cargo test --locked "$@"
