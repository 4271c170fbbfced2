"""Seeds a fresh authorization server's database and writes DIR/oauth.env.

    python seed.py USER:PASSWORD...     (OAUTH_DIR, OAUTH_BASE_URL set by oauth.sh)

Makes one user per mailbox address (the username is the address: Dovecot compares it
with the SASL user) and four applications:
  device        public, device flow (RFC 8628), the way Microsoft 365 is used headless
  web           confidential (with a secret), authorization code + PKCE S256, loopback
                redirect http://127.0.0.1/callback on any port (RFC 8252), like Google
  pkce          the same as web, public (no secret)
  dovecot       confidential, client credentials, scope introspection: what the mail
                server authenticates as at the introspection endpoint
"""
import json
import os
import secrets
import sys

import django

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from oauth2_provider.models import get_application_model  # noqa: E402

Application = get_application_model()
base = os.environ["OAUTH_BASE_URL"].rstrip("/")
out = {}

users = [a.split(":", 1) for a in sys.argv[1:]]
for name, password in users:
    u = get_user_model().objects.create_user(username=name, email=name, password=password)

owner = get_user_model().objects.create_user(username="oauth-admin", password=secrets.token_hex(16))


def app(key, name, client_type, grant, redirect=""):
    client_id = "esurety-" + key
    secret = secrets.token_urlsafe(32) if client_type == Application.CLIENT_CONFIDENTIAL else ""
    Application.objects.create(
        name=name, user=owner, client_id=client_id, client_secret=secret,
        client_type=client_type, authorization_grant_type=grant, redirect_uris=redirect,
        skip_authorization=False, algorithm="")
    out[f"OAUTH_{key.upper()}_CLIENT_ID"] = client_id
    if secret:
        out[f"OAUTH_{key.upper()}_CLIENT_SECRET"] = secret


app("device", "esurety (device)", Application.CLIENT_PUBLIC, Application.GRANT_DEVICE_CODE)
app("web", "esurety (web)", Application.CLIENT_CONFIDENTIAL, Application.GRANT_AUTHORIZATION_CODE,
    "http://127.0.0.1/callback")
app("pkce", "esurety (public, PKCE)", Application.CLIENT_PUBLIC, Application.GRANT_AUTHORIZATION_CODE,
    "http://127.0.0.1/callback")
app("dovecot", "Dovecot (introspection)", Application.CLIENT_CONFIDENTIAL, Application.GRANT_CLIENT_CREDENTIALS)

host = base.split("://", 1)[1]
out.update({
    "OAUTH_BASE_URL": base,
    "OAUTH_TOKEN_URL": base + "/o/token/",
    "OAUTH_DEVICE_AUTHORIZATION_URL": base + "/o/device-authorization/",
    "OAUTH_AUTHORIZE_URL": base + "/o/authorize/",
    "OAUTH_REDIRECT_URI": "http://127.0.0.1/callback",
    "OAUTH_REVOKE_URL": base + "/o/revoke_token/",
    "OAUTH_INTROSPECT_URL": base + "/o/introspect/",
    "OAUTH_SCOPE": "mail offline_access",
    "OAUTH_USER": users[0][0] if users else "",
    "OAUTH_PASSWORD": users[0][1] if users else "",
    "OAUTH_ACCESS_SECONDS": os.environ.get("OAUTH_ACCESS_SECONDS", "3600"),
})
# The URL Dovecot is given: the introspection client's credentials as userinfo (Dovecot
# sends them as HTTP basic authentication).
out["OAUTH_DOVECOT_INTROSPECTION_URL"] = (
    f"http://{out['OAUTH_DOVECOT_CLIENT_ID']}:{out['OAUTH_DOVECOT_CLIENT_SECRET']}@{host}/o/introspect/")

# oauth.env for sh (`. DIR/oauth.env`: KEY='value', no value holds a quote) and the same
# as oauth.json for the Rust tests.
d = os.environ["OAUTH_DIR"]
with open(os.path.join(d, "oauth.json.tmp"), "w") as f:
    json.dump(out, f, indent=1)
with open(os.path.join(d, "oauth.env.tmp"), "w") as f:
    for k, v in out.items():
        assert "'" not in v
        f.write(f"{k}='{v}'\n")
os.replace(os.path.join(d, "oauth.json.tmp"), os.path.join(d, "oauth.json"))
os.replace(os.path.join(d, "oauth.env.tmp"), os.path.join(d, "oauth.env"))
