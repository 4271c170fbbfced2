#!/bin/sh
# A real RFC 3161 timestamp authority for the tests: OpenSSL's `ts -reply` behind Debian's
# lighttpd (CGI), with a TSA certificate of its own test CA (extendedKeyUsage
# timeStamping, critical). Nothing of it is written by hand but this glue.
#
#   tests/servers/tsa.sh start DIR PORT     serve http://127.0.0.1:PORT/; DIR/tsa-ca.pem is
#                                           the CA a validator trusts for its tokens
#   tests/servers/tsa.sh stop DIR
#   tests/servers/tsa.sh restart DIR        the same authority again, after a stop
#   tests/servers/tsa.sh count DIR          how many tokens it has issued
#   tests/servers/tsa.sh hang DIR           the server stopped (SIGSTOP): connections are
#                                           taken by the kernel and never answered
#   tests/servers/tsa.sh resume DIR         and going on again (SIGCONT)
#   tests/servers/tsa.sh bigchain DIR       from now on its tokens carry about 16 KB of
#                                           extra certificates (a long chain)
set -eu
cmd=$1
DIR=$2
case $cmd in
start)
    PORT=$3
    mkdir -p "$DIR/docroot"
    (
        cd "$DIR"
        openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=esurety test TSA CA/C=JP" \
            -addext "keyUsage=critical,keyCertSign,cRLSign" -keyout tsa-ca.key -out tsa-ca.pem >/dev/null 2>&1
        openssl req -newkey rsa:2048 -nodes -subj "/CN=esurety test TSA/C=JP" -keyout tsa.key -out tsa.csr >/dev/null 2>&1
        printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,nonRepudiation\nextendedKeyUsage=critical,timeStamping\n' > tsa.ext
        openssl x509 -req -in tsa.csr -CA tsa-ca.pem -CAkey tsa-ca.key -CAcreateserial -days 3650 -extfile tsa.ext -out tsa.pem >/dev/null 2>&1
        echo 01 > serial
        : > count
        cat > openssl.cnf <<CNF
[ tsa ]
default_tsa = tsa_config
[ tsa_config ]
dir = $DIR
serial = \$dir/serial
crypto_device = builtin
signer_cert = \$dir/tsa.pem
certs = \$dir/tsa-ca.pem
signer_key = \$dir/tsa.key
signer_digest = sha256
default_policy = 1.2.3.4.1
other_policies = 1.2.3.4.5.6
digests = sha256, sha384, sha512
accuracy = secs:1
ordering = no
tsa_name = no
ess_cert_id_chain = no
ess_cert_id_alg = sha256
CNF
        # The CGI: one request body in, one reply out; the serial file under a lock
        # (lighttpd runs requests at once).
        cat > docroot/tsa.cgi <<CGI
#!/bin/sh
tmp=\$(mktemp -d)
trap 'rm -rf "\$tmp"' EXIT
head -c "\${CONTENT_LENGTH:-0}" > "\$tmp/req"
if flock "$DIR/serial" openssl ts -reply -config "$DIR/openssl.cnf" -queryfile "\$tmp/req" -out "\$tmp/reply" 2>"\$tmp/err"; then
    echo x >> "$DIR/count"
    printf 'Content-Type: application/timestamp-reply\r\n\r\n'
    cat "\$tmp/reply"
else
    printf 'Status: 400 Bad Request\r\nContent-Type: text/plain\r\n\r\n'
    cat "\$tmp/err"
fi
CGI
        chmod +x docroot/tsa.cgi
        cat > lighttpd.conf <<CONF
server.modules = ("mod_cgi", "mod_alias")
server.document-root = "$DIR/docroot"
server.bind = "127.0.0.1"
server.port = $PORT
server.pid-file = "$DIR/lighttpd.pid"
server.errorlog = "$DIR/error.log"
server.max-request-size = 64
alias.url = ("/" => "$DIR/docroot/tsa.cgi")
cgi.assign = ("" => "")
CONF
    )
    ;;
esac
case $cmd in
start|restart)
    PORT=$(sed -n 's/^server.port = //p' "$DIR/lighttpd.conf")
    rm -f "$DIR/lighttpd.pid"
    lighttpd -f "$DIR/lighttpd.conf"
    i=0
    while ! [ -s "$DIR/lighttpd.pid" ] || ! python3 -c "import socket; socket.create_connection(('127.0.0.1', $PORT), 1)" 2>/dev/null; do
        i=$((i + 1)); [ $i -lt 100 ] || { cat "$DIR/error.log" >&2; exit 1; }
        sleep 0.1
    done
    ;;
stop)
    if [ -s "$DIR/lighttpd.pid" ]; then
        pid=$(cat "$DIR/lighttpd.pid")
        kill -CONT "$pid" 2>/dev/null || true
        kill "$pid" 2>/dev/null || true
        while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
    fi
    ;;
bigchain)
    (
        cd "$DIR"
        pad=$(head -c 3500 /dev/zero | tr '\0' x)
        for i in 1 2 3 4 5; do
            openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 -subj "/CN=esurety test padding $i" \
                -addext "nsComment=$pad" -keyout /dev/null -out "pad$i.pem" >/dev/null 2>&1
        done
        cat tsa-ca.pem pad*.pem > bigchain.pem
        sed -i "s|^certs = .*|certs = $DIR/bigchain.pem|" openssl.cnf
    )
    ;;
hang)
    kill -STOP "$(cat "$DIR/lighttpd.pid")"
    ;;
resume)
    kill -CONT "$(cat "$DIR/lighttpd.pid")"
    ;;
count)
    wc -l < "$DIR/count" | tr -d ' '
    ;;
*) echo "tests/servers/tsa.sh: unknown command $cmd" >&2; exit 2 ;;
esac
