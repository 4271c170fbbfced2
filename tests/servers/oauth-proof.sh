#!/bin/sh
# Proves the OAuth harness with nothing of esurety: a real authorization server
# (tests/servers/oauth.sh), Dovecot's oauth2 passdb asking its introspection endpoint, and
# Postfix's OAuth-only submission port (tests/servers/start.sh --oauth), checked by a
# client written with Python's standard library. Prints each check and
# "N passed, N failed"; exits 1 if any failed. 35–50 s (3.5 s of it waiting for a real expiry).
#
#   tests/servers/oauth-proof.sh
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
"$HERE/oauth.sh" prepare
WORK=$(mktemp -d /tmp/esurety-oauth-proof.XXXXXX)
chmod 755 "$WORK"
OA=$WORK/oauth; MAIL=$WORK/mail
mkdir -m 755 "$OA" "$MAIL"
cleanup() {
    "$HERE/stop.sh" "$MAIL"; "$HERE/oauth.sh" stop "$OA"
    [ -n "${KEEP:-}" ] || rm -rf "$WORK"
}
trap cleanup EXIT

set -- $(python3 -c '
import socket
ss = [socket.socket() for _ in range(6)]
for s in ss: s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in ss])')
P_OAUTH=$1; P_IMAP=$2; P_IMAPS=$3; P_SMTP=$4; P_SUB=$5; P_OSUB=$6
USER=box@test.example
"$HERE/oauth.sh" start "$OA" "$P_OAUTH" "$USER:horse-battery" other@test.example:staple
. "$OA/oauth.env"
"$HERE/start.sh" --oauth "$OAUTH_DOVECOT_INTROSPECTION_URL" "$P_OSUB" \
    "$MAIL" "$P_IMAP" "$P_IMAPS" "$P_SMTP" "$P_SUB" "$USER:mail-pw" 2>"$WORK/start.err" \
    || { cat "$WORK/start.err" >&2; exit 1; }

python3 - "$OA" "$MAIL" "$HERE" "$P_IMAP" "$P_IMAPS" "$P_OSUB" "$P_SUB" <<'PY'
import base64, hashlib, http.server, imaplib, json, os, secrets, smtplib, ssl, subprocess
import sys, threading, time, urllib.error, urllib.parse, urllib.request

oa, mail, here = sys.argv[1:4]
p_imap, p_imaps, p_osub, p_sub = map(int, sys.argv[4:8])
env = json.load(open(f"{oa}/oauth.json"))
user = env["OAUTH_USER"]
ctx = ssl.create_default_context(cafile=f"{mail}/ca.pem")
passed = failed = 0
last = time.monotonic()


def check(what, ok, detail=""):
    """Prints the check with the time taken since the one before."""
    global passed, failed, last
    took = f"{time.monotonic() - last:5.2f}s"
    last = time.monotonic()
    if ok:
        passed += 1
        print(f"ok   {took} {what}", flush=True)
    else:
        failed += 1
        print(f"FAIL {took} {what}{': ' + detail if detail else ''}", flush=True)


def post(url, form, auth=None):
    req = urllib.request.Request(url, data=urllib.parse.urlencode(form).encode())
    if auth:
        req.add_header("Authorization", "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode())
    try:
        with urllib.request.urlopen(req, timeout=20) as r:
            body = r.read()
            return r.status, json.loads(body) if body else {}
    except urllib.error.HTTPError as e:
        body = e.read()
        try:
            return e.code, json.loads(body)
        except ValueError:
            return e.code, {"raw": body[:200]}


def xoauth2(tok):
    return f"user={user}\x01auth=Bearer {tok}\x01\x01"


def oauthbearer(tok, port):
    return f"n,a={user},\x01host=127.0.0.1\x01port={port}\x01auth=Bearer {tok}\x01\x01"


challenges = []


def imap_login(tok, mech="XOAUTH2", tls="imaps", as_user=None):
    """True when Dovecot lets the token in (and the session can SELECT INBOX)."""
    global user
    saved, user = user, as_user or user
    if tls == "imaps":
        m = imaplib.IMAP4_SSL("127.0.0.1", p_imaps, ssl_context=ctx, timeout=20)
        port = p_imaps
    else:
        m = imaplib.IMAP4("127.0.0.1", p_imap, timeout=20)
        m.starttls(ssl_context=ctx)
        port = p_imap
    ir = xoauth2(tok) if mech == "XOAUTH2" else oauthbearer(tok, port)
    user = saved
    sent = []

    def answer(challenge):
        # The first call sends the initial response; after a refusal Dovecot sends a JSON
        # error as a challenge, which the client answers with an empty response (RFC 7628).
        sent.append(challenge)
        if len(sent) > 1:
            challenges.append(challenge)
        return ir.encode() if len(sent) == 1 else b""
    try:
        typ, _ = m.authenticate(mech, answer)
        ok = typ == "OK" and m.select("INBOX")[0] == "OK"
        m.logout()
        return ok
    except imaplib.IMAP4.error:
        return False


def smtp_auth(tok, port=None, mech="XOAUTH2"):
    """Logs in on the OAuth submission port after STARTTLS; the initial response goes
    after the 334 (Postfix's 2048-character line limit); returns the final reply code."""
    s = smtplib.SMTP("127.0.0.1", port or p_osub, timeout=20)
    s.ehlo("client.test")
    s.starttls(context=ctx)
    s.ehlo("client.test")
    code, _ = s.docmd("AUTH", mech)
    if code != 334:
        s.quit()
        return code, s
    ir = xoauth2(tok) if mech == "XOAUTH2" else oauthbearer(tok, port or p_osub)
    code, msg = s.docmd(base64.b64encode(ir.encode()).decode())
    if code == 334:  # the error challenge: answer it empty, then the refusal comes
        code, msg = s.docmd("")
    return code, s


def device_flow(deny=False, extra=()):
    st, d = post(env["OAUTH_DEVICE_AUTHORIZATION_URL"],
                 {"client_id": env["OAUTH_DEVICE_CLIENT_ID"], "scope": env["OAUTH_SCOPE"]})
    assert st == 200, (st, d)
    form = {"grant_type": "urn:ietf:params:oauth:grant-type:device_code",
            "device_code": d["device_code"], "client_id": env["OAUTH_DEVICE_CLIENT_ID"]}
    st, pending = post(env["OAUTH_TOKEN_URL"], form)
    args = [f"{here}/oauth-approve.py", "device", oa, d["user_code"]] + (["--deny"] if deny else []) + list(extra)
    approved = subprocess.run([sys.executable] + args, capture_output=True, text=True)
    time.sleep(d.get("interval", 1))
    st2, tokens = post(env["OAUTH_TOKEN_URL"], form)
    return d, pending, approved, st2, tokens


# 1. The device flow (RFC 8628), as a person at a browser approves it.
d, pending, approved, st, tok = device_flow()
check("device authorization gives a user code and a verification URI",
      d.get("user_code") and d.get("verification_uri", "").startswith(env["OAUTH_BASE_URL"]))
check("the token endpoint says authorization_pending before the user approves",
      pending.get("error") == "authorization_pending", str(pending))
check("the user approves through the login and consent pages", approved.returncode == 0, approved.stderr)
check("the device flow then gives an access token and a refresh token",
      st == 200 and tok.get("access_token") and tok.get("refresh_token"), str(st))
at1, rt1 = tok["access_token"], tok["refresh_token"]
check("the access token is as long as a real provider's (1800 characters)", len(at1) == 1800, str(len(at1)))

_, _, denied, st, tokd = device_flow(deny=True)
check("a device request the user denies ends in access_denied",
      denied.returncode == 0 and tokd.get("error") == "access_denied", str(tokd))

_, _, other, st, toko = device_flow(extra=["--user", "other@test.example", "--password", "staple"])
check("approved as another user of the authorization server, the flow gives tokens",
      other.returncode == 0 and st == 200, other.stderr)

# 2. IMAP through Dovecot's oauth2 passdb (introspection).
check("IMAP AUTHENTICATE XOAUTH2 with the access token (IMAPS)", imap_login(at1, "XOAUTH2"))
check("IMAP AUTHENTICATE OAUTHBEARER with the access token (IMAPS)", imap_login(at1, "OAUTHBEARER"))
check("IMAP AUTHENTICATE XOAUTH2 after STARTTLS", imap_login(at1, "XOAUTH2", tls="starttls"))
t = time.time()
check("IMAP refuses a token the server never issued", not imap_login(at1[:-4] + "AAAA"))
check("  and refuses it quickly (no auth failure delay)", time.time() - t < 1.5, f"{time.time() - t:.1f} s")
try:
    said = json.loads(challenges[-1])
except (IndexError, ValueError):
    said = {}
check("  after a JSON error challenge (answered with an empty response)", said.get("status") == "401", str(challenges[-1:]))
check("IMAP refuses the token for another user (the introspected username must match)",
      not imap_login(at1, as_user="other@test.example"))
check("  and the other user's token for this mailbox", not imap_login(toko["access_token"]))
def imap_sasl_ir(tok):
    """AUTHENTICATE XOAUTH2 with the initial response on the command line (SASL-IR)."""
    m = imaplib.IMAP4_SSL("127.0.0.1", p_imaps, ssl_context=ctx, timeout=20)
    ir = base64.b64encode(xoauth2(tok).encode()).decode()
    m.send(f"a1 AUTHENTICATE XOAUTH2 {ir}\r\n".encode())
    line = m.readline().decode()
    while line.startswith("* "):
        line = m.readline().decode()
    m.shutdown()
    return line


line = imap_sasl_ir(at1)
check("IMAP takes the long initial response on the command line (SASL-IR, "
      f"{len(base64.b64encode(xoauth2(at1).encode())) + 26} characters)", line.startswith("a1 OK"), line.strip())
m = imaplib.IMAP4_SSL("127.0.0.1", p_imaps, ssl_context=ctx)
check("passwords still work on IMAP (LOGIN)", m.login(user, "mail-pw")[0] == "OK")
m.logout()

# 3. Postfix submission, OAuth only, through Dovecot's SASL.
s = smtplib.SMTP("127.0.0.1", p_osub, timeout=20)
s.ehlo("client.test")
check("the OAuth submission port offers no AUTH before STARTTLS", not s.has_extn("auth"))
s.starttls(context=ctx)
s.ehlo("client.test")
mechs = set(s.esmtp_features.get("auth", "").upper().split())
check("after STARTTLS it offers XOAUTH2 and OAUTHBEARER only", mechs == {"XOAUTH2", "OAUTHBEARER"}, str(mechs))
s.quit()
code, s = smtp_auth(at1)
check("SMTP AUTH XOAUTH2 on the submission port (235)", code == 235, str(code))
if code == 235:
    msg = (f"From: {user}\r\nTo: {user}\r\nSubject: oauth proof\r\nMessage-ID: <oauth-proof@test>\r\n\r\nsent with a bearer token\r\n")
    s.sendmail(user, [user], msg)
    s.quit()
    newdir = f"{mail}/home/test.example/box/Maildir/new"
    for _ in range(100):
        if os.path.isdir(newdir) and any("oauth proof" in open(f"{newdir}/{f}").read() for f in os.listdir(newdir)):
            break
        time.sleep(0.05)
    check("  and the mail it sent arrives in the mailbox", os.path.isdir(newdir) and any(
        "oauth proof" in open(f"{newdir}/{f}").read() for f in os.listdir(newdir)))
s = smtplib.SMTP("127.0.0.1", p_osub, timeout=20)
s.ehlo("client.test"); s.starttls(context=ctx); s.ehlo("client.test")
line = "AUTH XOAUTH2 " + base64.b64encode(xoauth2(at1).encode()).decode()
code, reply = s.docmd(line)
# Postfix cuts the line at 2048 and says 535, as for a bad token: a client that sends
# the response inline takes a good token for a refused one.
check(f"Postfix refuses the initial response inline on the AUTH line ({len(line)} characters > 2048)",
      code == 535 and b"base64" in reply, f"{code} {reply}")
s.close()
code, s = smtp_auth(at1, mech="OAUTHBEARER")
check("SMTP AUTH OAUTHBEARER on the submission port (235)", code == 235, str(code))
s.quit()
code, s = smtp_auth("not" + at1)
check("SMTP AUTH refuses an unknown token (535)", code == 535, str(code))
s.quit()
s = smtplib.SMTP("127.0.0.1", p_osub, timeout=20)
s.ehlo("client.test"); s.starttls(context=ctx); s.ehlo("client.test")
code, _ = s.docmd("AUTH", "PLAIN " + base64.b64encode(f"\0{user}\0mail-pw".encode()).decode())
check("the OAuth submission port refuses a password (AUTH PLAIN)", code >= 500, str(code))
s.quit()

s = smtplib.SMTP("127.0.0.1", p_sub, timeout=20)
s.ehlo("client.test"); s.starttls(context=ctx); s.ehlo("client.test")
check("the password submission port still takes a password", s.login(user, "mail-pw")[0] == 235)
s.quit()

# 4. Refresh (RFC 6749 §6) with rotation.
st, tok = post(env["OAUTH_TOKEN_URL"], {"grant_type": "refresh_token", "refresh_token": rt1,
                                        "client_id": env["OAUTH_DEVICE_CLIENT_ID"]})
check("refresh gives a new access token", st == 200 and tok.get("access_token") not in (None, at1), str(st))
check("  and a new refresh token (rotation)", tok.get("refresh_token") not in (None, rt1))
at2, rt2 = tok["access_token"], tok["refresh_token"]
check("the new access token logs in to IMAP", imap_login(at2))
check("the access token before the refresh is refused", not imap_login(at1))
st, again = post(env["OAUTH_TOKEN_URL"], {"grant_type": "refresh_token", "refresh_token": rt1,
                                          "client_id": env["OAUTH_DEVICE_CLIENT_ID"]})
check("the rotated-out refresh token is refused (invalid_grant)", again.get("error") == "invalid_grant", str(again))

# 5. Expiry, as the clock runs (tokens issued from now on live 3 s) and by `oauth.sh expire`.
subprocess.run([f"{here}/oauth.sh", "lifetime", oa, "3"], check=True)
st, tok = post(env["OAUTH_TOKEN_URL"], {"grant_type": "refresh_token", "refresh_token": rt2,
                                        "client_id": env["OAUTH_DEVICE_CLIENT_ID"]})
check("oauth.sh lifetime: the next token says expires_in 3", st == 200 and tok.get("expires_in") == 3, str(tok.get("expires_in")))
at2, rt2 = tok["access_token"], tok["refresh_token"]
check("  and logs in at once", imap_login(at2))
time.sleep(3.5)
check("an expired access token is refused by IMAP", not imap_login(at2))
code, s = smtp_auth(at2)
check("  and by SMTP (535)", code == 535, str(code))
s.quit()
st, tok = post(env["OAUTH_TOKEN_URL"], {"grant_type": "refresh_token", "refresh_token": rt2,
                                        "client_id": env["OAUTH_DEVICE_CLIENT_ID"]})
check("after expiry the refresh token still gives a new access token", st == 200, str(tok))
at3, rt3 = tok["access_token"], tok["refresh_token"]
check("  which logs in", imap_login(at3))
subprocess.run([f"{here}/oauth.sh", "lifetime", oa, "3600"], check=True)
r = subprocess.run([f"{here}/oauth.sh", "expire", oa], capture_output=True, text=True)
check("oauth.sh expire makes the live access token expire now", r.returncode == 0 and not imap_login(at3), r.stderr)
st, tok = post(env["OAUTH_TOKEN_URL"], {"grant_type": "refresh_token", "refresh_token": rt3,
                                        "client_id": env["OAUTH_DEVICE_CLIENT_ID"]})
at4, rt4 = tok["access_token"], tok["refresh_token"]
check("  and refresh still works after it", st == 200 and imap_login(at4))

# 6. Revocation (RFC 7009): the refresh token, and with it its access token.
st, _ = post(env["OAUTH_REVOKE_URL"], {"token": rt4, "token_type_hint": "refresh_token",
                                       "client_id": env["OAUTH_DEVICE_CLIENT_ID"]})
check("the revocation endpoint takes the refresh token (200)", st == 200, str(st))
st, tok = post(env["OAUTH_TOKEN_URL"], {"grant_type": "refresh_token", "refresh_token": rt4,
                                        "client_id": env["OAUTH_DEVICE_CLIENT_ID"]})
check("a revoked refresh token is refused (invalid_grant)", tok.get("error") == "invalid_grant", str(tok))
check("  and its access token no longer logs in", not imap_login(at4))

# 7. What the server's administrator does: revoke a user's grants; stop and restart.
_, _, _, st, tok = device_flow()
at5, rt5 = tok["access_token"], tok["refresh_token"]
before = json.loads(subprocess.run([f"{here}/oauth.sh", "tokens", oa], capture_output=True, text=True).stdout)
r = subprocess.run([f"{here}/oauth.sh", "revoke", oa, user], capture_output=True, text=True)
after = json.loads(subprocess.run([f"{here}/oauth.sh", "tokens", oa], capture_output=True, text=True).stdout)
# The other user's grant (section 1) is not touched.
check("oauth.sh revoke revokes this user's refresh tokens, not the other's (oauth.sh tokens counts them)",
      r.returncode == 0 and before["refresh_live"] == 2 and after["refresh_live"] == 1
      and after["refresh_revoked"] == before["refresh_revoked"] + 1, f"{before} {after}")
st, tok = post(env["OAUTH_TOKEN_URL"], {"grant_type": "refresh_token", "refresh_token": rt5,
                                        "client_id": env["OAUTH_DEVICE_CLIENT_ID"]})
check("  its refresh token is refused (invalid_grant)", tok.get("error") == "invalid_grant", str(tok))
check("  and its access token no longer logs in", not imap_login(at5))
_, _, _, st, tok = device_flow()
at6, rt6 = tok["access_token"], tok["refresh_token"]
subprocess.run([f"{here}/oauth.sh", "stop", oa], check=True)
try:
    urllib.request.urlopen(env["OAUTH_TOKEN_URL"], data=b"", timeout=5)
    down = False
except urllib.error.HTTPError:
    down = False
except OSError:
    down = True
check("oauth.sh stop: the token endpoint no longer answers", down)
check("  and Dovecot refuses even a live token while it cannot introspect", not imap_login(at6))
r = subprocess.run([f"{here}/oauth.sh", "restart", oa], capture_output=True, text=True)
check("oauth.sh restart: the same server is back", r.returncode == 0, r.stderr)
check("  the live token logs in again", imap_login(at6))
st, tok = post(env["OAUTH_TOKEN_URL"], {"grant_type": "refresh_token", "refresh_token": rt6,
                                        "client_id": env["OAUTH_DEVICE_CLIENT_ID"]})
check("  and the refresh token from before the restart still works", st == 200, str(tok.get("error")))

# 8. Authorization code + PKCE S256 with a loopback redirect (confidential client).
got = {}


class Callback(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        got.update(urllib.parse.parse_qs(urllib.parse.urlparse(self.path).query))
        self.send_response(200); self.end_headers(); self.wfile.write(b"done")

    def log_message(self, *a):
        pass


srv = http.server.HTTPServer(("127.0.0.1", 0), Callback)
threading.Thread(target=srv.handle_request, daemon=True).start()
redirect = f"http://127.0.0.1:{srv.server_port}/callback"
verifier = secrets.token_urlsafe(48)
challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
state = secrets.token_urlsafe(8)
url = env["OAUTH_AUTHORIZE_URL"] + "?" + urllib.parse.urlencode({
    "response_type": "code", "client_id": env["OAUTH_WEB_CLIENT_ID"], "redirect_uri": redirect,
    "scope": env["OAUTH_SCOPE"], "state": state, "code_challenge": challenge,
    "code_challenge_method": "S256"})
r = subprocess.run([sys.executable, f"{here}/oauth-approve.py", "authorize", oa, url], capture_output=True, text=True)
check("the user approves the authorization request; the loopback listener gets the code",
      r.returncode == 0 and got.get("state") == [state] and "code" in got, r.stdout + r.stderr)
code_ = got.get("code", [""])[0]
st, bad = post(env["OAUTH_TOKEN_URL"], {"grant_type": "authorization_code", "code": code_,
                                        "redirect_uri": redirect, "code_verifier": "x" * 50},
               auth=(env["OAUTH_WEB_CLIENT_ID"], env["OAUTH_WEB_CLIENT_SECRET"]))
check("a wrong PKCE verifier is refused", st == 400 and bad.get("error") == "invalid_grant", str(bad))
# A refused code is spent in DOT? Ask for a fresh one if so.
st, tok = post(env["OAUTH_TOKEN_URL"], {"grant_type": "authorization_code", "code": code_,
                                        "redirect_uri": redirect, "code_verifier": verifier},
               auth=(env["OAUTH_WEB_CLIENT_ID"], env["OAUTH_WEB_CLIENT_SECRET"]))
check("the code with the verifier and the client secret gives tokens",
      st == 200 and tok.get("access_token") and tok.get("refresh_token"), str(tok.get("error")))
if st == 200:
    check("  whose access token logs in to IMAP", imap_login(tok["access_token"], "OAUTHBEARER"))
    st, _ = post(env["OAUTH_TOKEN_URL"], {"grant_type": "refresh_token", "refresh_token": tok["refresh_token"]},
                 auth=(env["OAUTH_WEB_CLIENT_ID"], "wrong-secret"))
    check("refresh with a wrong client secret is refused (401)", st == 401, str(st))

got.clear()
threading.Thread(target=srv.handle_request, daemon=True).start()
url = url.replace(f"state={state}", "state=again")
r = subprocess.run([sys.executable, f"{here}/oauth-approve.py", "authorize", oa, url, "--deny"], capture_output=True, text=True)
check("an authorization request the user cancels sends the client access_denied",
      r.returncode == 0 and got.get("error") == ["access_denied"] and got.get("state") == ["again"], r.stdout + r.stderr + str(got))

print(f"oauth-proof: {passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
PY
