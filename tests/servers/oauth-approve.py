#!/usr/bin/env python3
"""Approves (or denies) an OAuth request as the user would at a browser, by driving the
authorization server's real pages over HTTP: the login form, then the consent form, each
with its CSRF token and the session cookie. Standard library only.

    oauth-approve.py device DIR USER_CODE [--deny] [--user U --password P]
        enters USER_CODE at the device page (RFC 8628 verification_uri) and accepts it
    oauth-approve.py authorize DIR URL [--deny] [--user U --password P]
        opens URL (the authorization request the client printed), consents, and follows the
        redirect to the client's loopback redirect_uri (so the client's listener gets
        ?code=...&state=...); prints where it went (not the code); exits 1 when the server
        sent the client an error instead of a code

DIR is where tests/servers/oauth.sh start wrote oauth.env; the user defaults to its first
user (OAUTH_USER / OAUTH_PASSWORD). Exits 0 when the server took the answer, 1 with the
reason otherwise.
"""
import argparse
import html
import http.cookiejar
import re
import sys
import urllib.error
import urllib.parse
import urllib.request


def env(dir_):
    out = {}
    for line in open(f"{dir_}/oauth.env"):
        k, _, v = line.rstrip("\n").partition("=")
        out[k] = v.strip("'")
    return out


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *a, **k):
        return None


class Browser:
    """Cookies and redirects as a browser; a redirect to the client (stop_at) is not
    followed but returned, so that the caller opens it once it has seen it."""

    def __init__(self, stop_at=None):
        self.stop_at = stop_at
        jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar), NoRedirect())

    def go(self, url, form=None, referer=None):
        """One request; returns (status, final url, location, body) without following."""
        data = urllib.parse.urlencode(form).encode() if form is not None else None
        req = urllib.request.Request(url, data=data)
        if referer:
            req.add_header("Referer", referer)
        try:
            r = self.opener.open(req, timeout=20)
            return r.status, url, None, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, url, e.headers.get("Location"), e.read().decode(errors="replace")

    def follow(self, url, form=None):
        """Follows redirects on the server (GET after a POST, as browsers do); stops before
        a location that starts with stop_at and returns it."""
        status, url, loc, body = self.go(url, form)
        for _ in range(10):
            if status not in (301, 302, 303, 307):
                return status, url, body
            nxt = urllib.parse.urljoin(url, loc)
            if self.stop_at and nxt.startswith(self.stop_at):
                return status, nxt, ""
            status, url, loc, body = self.go(nxt)
        raise SystemExit("oauth-approve: too many redirects")


def hidden_fields(page):
    """The form's hidden inputs (csrfmiddlewaretoken and, on the consent page, the request)."""
    fields = {}
    for tag in re.findall(r"<input\b[^>]*>", page):
        if 'type="hidden"' not in tag:
            continue
        name = re.search(r'name="([^"]*)"', tag)
        value = re.search(r'value="([^"]*)"', tag)
        if name:
            fields[html.unescape(name.group(1))] = html.unescape(value.group(1)) if value else ""
    return fields


def login(b, base, page_url, page, user, password):
    """On the login page the server sent us to: signs in, returns the page after it."""
    if 'name="password"' not in page:
        return page_url, page  # already signed in, or sent on to the client
    form = hidden_fields(page)
    form.update(username=user, password=password)
    status, url, body = b.follow(base + "/accounts/login/", form)
    if 'name="password"' in body:
        raise SystemExit("oauth-approve: the server refused the user's password")
    return url, body


def main(argv):
    p = argparse.ArgumentParser(usage=__doc__)
    p.add_argument("mode", choices=["device", "authorize"])
    p.add_argument("dir")
    p.add_argument("what")
    p.add_argument("--deny", action="store_true")
    p.add_argument("--user")
    p.add_argument("--password")
    a = p.parse_args(argv)
    mode, dir_, what, deny = a.mode, a.dir, a.what, a.deny
    e = env(dir_)
    user = a.user or e.get("OAUTH_USER")
    password = a.password or e.get("OAUTH_PASSWORD")
    base = e["OAUTH_BASE_URL"]
    b = Browser()

    if mode == "device":
        start = base + "/o/device/?" + urllib.parse.urlencode({"user_code": what})
        status, url, page = b.follow(start)
        url, page = login(b, base, url, page, user, password)
        if "user_code" not in page:
            raise SystemExit(f"oauth-approve: no device page at {url} ({status})")
        form = hidden_fields(page)
        form["user_code"] = what
        status, url, page = b.follow(base + "/o/device/", form)
        if "action" not in page:
            said = " ".join(re.findall(r"<li>([^<]*)</li>", page)) or str(status)
            raise SystemExit(f"oauth-approve: the server did not take the user code: {said}")
        form = hidden_fields(page)
        form["action"] = "deny" if deny else "accept"
        status, url, page = b.follow(url, form)
        word = "Denied" if deny else "Authorized"
        if word not in page:
            raise SystemExit(f"oauth-approve: the device grant is not {word.lower()} ({status})")
        print(f"device {what}: {word.lower()}")
        return

    # authorize: the URL the client printed, the login, the consent page, its redirect.
    redirect_base = urllib.parse.parse_qs(urllib.parse.urlparse(what).query).get("redirect_uri", [""])[0]
    b.stop_at = redirect_base or None
    status, url, page = b.follow(what)
    url, page = login(b, base, url, page, user, password)
    if redirect_base and url.startswith(redirect_base):
        # Sent back to the client before any consent: an error (e.g. no PKCE challenge).
        deliver(url)
        sys.exit(1)
    if "authorizationForm" not in page:
        said = re.findall(r"<h2>([^<]*)</h2>\s*<p>([^<]*)</p>", page)
        raise SystemExit(f"oauth-approve: no consent page ({status}): "
                         + (" ".join(said[0]) if said else html.unescape(re.sub(r"<[^>]+>", " ", page))[:300]))
    form = hidden_fields(page)
    if not deny:
        form["allow"] = "Authorize"
    status, location, _ = b.follow(url, form)
    if not redirect_base or not location.startswith(redirect_base):
        raise SystemExit(f"oauth-approve: the server did not redirect to the client ({status} {location})")
    sys.exit(0 if deliver(location) != deny else 1)  # a code, or with --deny access_denied


def deliver(location):
    """Opens the client's redirect_uri as the browser would; says where it went and with
    what (not the code: it is a credential). True when it carried a code."""
    # The browser now opens the client's loopback redirect: its listener gets the code.
    try:
        urllib.request.urlopen(location, timeout=20).read()
    except urllib.error.HTTPError:
        pass  # the client's page may answer anything; what matters is that it was reached
    except OSError as err:
        print(f"oauth-approve: the client's redirect_uri did not answer: {err}", file=sys.stderr)
    # The code is a credential: say where it went, not what it is.
    q = urllib.parse.parse_qs(urllib.parse.urlparse(location).query)
    got = "an error: " + q["error"][0] if "error" in q else "a code"
    print(f"redirected to {location.split('?')[0]} with {got}")
    return "code" in q


if __name__ == "__main__":
    main(sys.argv[1:])
