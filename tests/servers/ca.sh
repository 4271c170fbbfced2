#!/bin/sh
# A test CA (DIR/ca.pem, what clients trust) and a server certificate it signed for
# localhost and 127.0.0.1 (DIR/cert.pem, DIR/key.pem). Does nothing if they exist.
#
#   tests/servers/ca.sh DIR
set -eu
DIR=$1
mkdir -p "$DIR"
if [ ! -f "$DIR/cert.pem" ]; then
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=esurety test CA" \
        -keyout "$DIR/ca.key" -out "$DIR/ca.pem" >/dev/null 2>&1
    openssl req -newkey rsa:2048 -nodes -subj /CN=localhost -keyout "$DIR/key.pem" -out "$DIR/server.csr" >/dev/null 2>&1
    printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=critical,CA:FALSE\nextendedKeyUsage=serverAuth\n' > "$DIR/server.ext"
    openssl x509 -req -in "$DIR/server.csr" -CA "$DIR/ca.pem" -CAkey "$DIR/ca.key" -CAcreateserial -days 2 \
        -extfile "$DIR/server.ext" -out "$DIR/cert.pem" >/dev/null 2>&1
fi
