"""Access tokens as long as real providers' (Microsoft's are JWTs, commonly 1,500–2,500
characters), so that a client meets what it will meet: an XOAUTH2 initial response past
Postfix's 2,048-character SMTP line limit. OAUTH_TOKEN_LENGTH sets the length (default
1800; 0 gives DOT's own 30-character tokens)."""
import os
import secrets

from oauthlib.oauth2.rfc6749.tokens import random_token_generator


def access_token(request):
    n = int(os.environ.get("OAUTH_TOKEN_LENGTH", "1800"))
    if n <= 0:
        return random_token_generator(request)
    # Shaped like a JWT (three base64url parts joined by dots); random all the same.
    body = secrets.token_urlsafe(n)[: n - 2]
    a, b = len(body) // 10, len(body) * 8 // 10
    return f"{body[:a]}.{body[a:b]}.{body[b:]}"


def access_seconds(request):
    """The lifetime of the access token being issued: DIR/access-seconds when a test has
    written it (`oauth.sh lifetime DIR SECONDS`), else OAUTH_ACCESS_SECONDS."""
    try:
        with open(os.path.join(os.environ["OAUTH_DIR"], "access-seconds")) as f:
            return int(f.read())
    except FileNotFoundError:
        return int(os.environ.get("OAUTH_ACCESS_SECONDS", "3600"))
