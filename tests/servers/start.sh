#!/bin/sh
# Starts a real Dovecot (IMAP, IMAPS, LMTP) and a real Postfix (SMTP, submission with
# AUTH + STARTTLS) on loopback from config files in DIR; nothing in /etc is touched and
# nothing can leave the machine (Postfix has no SMTP client: other domains get error:).
#
#   tests/servers/start.sh [--oauth INTROSPECTION_URL OAUTH_SUBMISSION] DIR IMAP IMAPS SMTP SUBMISSION USER:PASSWORD...
#
# With --oauth, Dovecot also accepts SASL XOAUTH2 and OAUTHBEARER (RFC 7628) for IMAP: its
# oauth2 passdb asks INTROSPECTION_URL (RFC 7662, POST; credentials as the URL's userinfo,
# e.g. OAUTH_DOVECOT_INTROSPECTION_URL from tests/servers/oauth.sh) whether the bearer
# token is active and whose it is; passwords go on working for PLAIN and LOGIN. Postfix
# gets a second submission port, OAUTH_SUBMISSION, that offers only XOAUTH2 and
# OAUTHBEARER (after STARTTLS), through Dovecot's auth socket (the first one takes both
# kinds). Refusals come within ~0.5 s instead of 2 s; dovecot/log says why each was.
#
# Mail for USER (a full address) ends in DIR/home/<domain>/<local>/Maildir.
# Stop with tests/servers/stop.sh DIR.
set -eu
OAUTH_URL=""; OAUTH_SUB=""
if [ "${1:-}" = --oauth ]; then OAUTH_URL=$2; OAUTH_SUB=$3; shift 3; fi
DIR=$1; IMAP=$2; IMAPS=$3; SMTP=$4; SUB=$5; shift 5
mkdir -p "$DIR/dovecot/run" "$DIR/dovecot/state" "$DIR/home" "$DIR/pf/queue" "$DIR/pf/data"
chown mail:mail "$DIR/home"

# A test CA (ca.pem, what clients trust) and a server certificate it signed for
# localhost and 127.0.0.1 (cert.pem, key.pem).
"$(dirname "$0")/ca.sh" "$DIR"

: > "$DIR/dovecot/users"
: > "$DIR/pf/vmailbox"
domains=""
for up in "$@"; do
    user=${up%%:*}; pw=${up#*:}
    echo "$user:{PLAIN}$pw" >> "$DIR/dovecot/users"
    echo "$user OK" >> "$DIR/pf/vmailbox"
    d=${user#*@}
    case " $domains " in *" $d "*) ;; *) domains="$domains $d" ;; esac
done

cat > "$DIR/dovecot/dovecot.conf" <<CONF
instance_name = esurety-$(basename "$DIR")
base_dir = $DIR/dovecot/run
state_dir = $DIR/dovecot/state
log_path = $DIR/dovecot/log
listen = 127.0.0.1
protocols = imap lmtp
ssl = yes
ssl_cert = <$DIR/cert.pem
ssl_key = <$DIR/key.pem
disable_plaintext_auth = no
auth_mechanisms = plain login$( [ -z "$OAUTH_URL" ] || echo " xoauth2 oauthbearer" )
$( [ -z "$OAUTH_URL" ] || printf 'auth_failure_delay = 0\nauth_verbose = yes\n' )
first_valid_uid = 1
mail_location = maildir:~/Maildir
mail_max_userip_connections = 200
stats_writer_socket_path =
$( [ -z "$OAUTH_URL" ] || cat <<OAUTH
# Postfix's OAuth submission port asks as service smtp-oauth: no password there (deny:
# the service name is the key, found in password-refused). Lookups without a mechanism
# (LMTP's userdb check) still reach the passwords: "none".
passdb {
  driver = passwd-file
  args = username_format=%s $DIR/dovecot/password-refused
  mechanisms = plain login
  deny = yes
}
OAUTH
)
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u $DIR/dovecot/users
$( [ -z "$OAUTH_URL" ] || echo "  mechanisms = plain login none" )
}
$( [ -z "$OAUTH_URL" ] || cat <<OAUTH
passdb {
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  args = $DIR/dovecot/oauth2.conf.ext
}
OAUTH
)
userdb {
  driver = static
  args = uid=mail gid=mail home=$DIR/home/%d/%n
}
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = $IMAP
  }
  inet_listener imaps {
    address = 127.0.0.1
    port = $IMAPS
    ssl = yes
  }
}
service lmtp {
  unix_listener $DIR/dovecot/lmtp {
    mode = 0666
  }
}
service auth {
  unix_listener $DIR/pf/queue/private/auth {
    mode = 0666
  }
}
service anvil {
  unix_listener anvil-auth-penalty {
    mode = 0
  }
}
CONF

if [ -n "$OAUTH_URL" ]; then
    # Post the token to the introspection endpoint; the answer's "username" must be the
    # SASL user, and "active" must be true (DOT says false once a token expired or was
    # revoked).
    cat > "$DIR/dovecot/oauth2.conf.ext" <<CONF
introspection_mode = post
introspection_url = $OAUTH_URL
force_introspection = yes
username_attribute = username
active_attribute = active
active_value = true
timeout_msecs = 10000
CONF
    chmod 600 "$DIR/dovecot/oauth2.conf.ext"
    echo "smtp-oauth:" > "$DIR/dovecot/password-refused"
fi

cat > "$DIR/pf/main.cf" <<CONF
compatibility_level = 3.6
queue_directory = $DIR/pf/queue
data_directory = $DIR/pf/data
meta_directory = /etc/postfix
mail_owner = postfix
myhostname = mail.test.example
inet_interfaces = loopback-only
inet_protocols = ipv4
mydestination =
mynetworks = 127.0.0.0/8
virtual_alias_domains =
virtual_mailbox_domains =$domains
virtual_mailbox_maps = texthash:$DIR/pf/vmailbox
virtual_transport = lmtp:unix:$DIR/dovecot/lmtp
default_transport = error:this test server delivers only to its own users
relay_transport = error:this test server delivers only to its own users
smtpd_relay_restrictions = permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination
smtpd_tls_cert_file = $DIR/cert.pem
smtpd_tls_key_file = $DIR/key.pem
smtpd_sasl_type = dovecot
smtpd_sasl_path = private/auth
maillog_file = $DIR/pf/maillog
maillog_file_prefixes = $DIR
biff = no
CONF

cat > "$DIR/pf/master.cf" <<CONF
127.0.0.1:$SMTP inet n - n - - smtpd
127.0.0.1:$SUB inet n - n - - smtpd
  -o smtpd_tls_security_level=encrypt
  -o smtpd_sasl_auth_enable=yes
  -o smtpd_client_restrictions=permit_sasl_authenticated,reject
$( [ -z "$OAUTH_SUB" ] || cat <<OAUTH
127.0.0.1:$OAUTH_SUB inet n - n - - smtpd
  -o smtpd_tls_security_level=encrypt
  -o smtpd_sasl_auth_enable=yes
  -o smtpd_sasl_mechanism_filter=xoauth2,oauthbearer
  -o smtpd_sasl_service=smtp-oauth
  -o smtpd_client_restrictions=permit_sasl_authenticated,reject
OAUTH
)
pickup    unix  n - n 60 1 pickup
cleanup   unix  n - n - 0 cleanup
qmgr      unix  n - n 300 1 qmgr
tlsmgr    unix  - - n 1000? 1 tlsmgr
rewrite   unix  - - n - - trivial-rewrite
bounce    unix  - - n - 0 bounce
defer     unix  - - n - 0 bounce
trace     unix  - - n - 0 bounce
verify    unix  - - n - 1 verify
flush     unix  n - n 1000? 0 flush
proxymap  unix  - - n - - proxymap
showq     unix  n - n - - showq
error     unix  - - n - - error
retry     unix  - - n - - error
discard   unix  - - n - - discard
lmtp      unix  - - n - - lmtp
anvil     unix  - - n - 1 anvil
scache    unix  - - n - 1 scache
postlog   unix-dgram n - n - 1 postlogd
CONF
# A main.cf younger than a few seconds makes Postfix re-read it after start.
touch -d '10 seconds ago' "$DIR/pf/main.cf" "$DIR/pf/master.cf"
for q in active bounce corrupt defer deferred flush hold incoming maildrop pid private public saved trace; do
    mkdir -p "$DIR/pf/queue/$q"
done
chown -R postfix "$DIR/pf/queue" "$DIR/pf/data"
chown root "$DIR/pf/queue" "$DIR/pf/queue/pid"
chgrp postdrop "$DIR/pf/queue/maildrop" "$DIR/pf/queue/public" 2>/dev/null || true
chmod 730 "$DIR/pf/queue/maildrop"; chmod 710 "$DIR/pf/queue/public"

dovecot -c "$DIR/dovecot/dovecot.conf" </dev/null >"$DIR/dovecot/start.log" 2>&1 || { echo "dovecot did not start:" >&2; cat "$DIR/dovecot/start.log" "$DIR/dovecot/log" >&2 2>/dev/null; exit 1; }
postfix -c "$DIR/pf" start </dev/null >"$DIR/pf/start.log" 2>&1 || { cat "$DIR/pf/start.log" "$DIR/pf/maillog" >&2 2>/dev/null; exit 1; }
