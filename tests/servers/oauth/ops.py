"""What an administrator of the authorization server does, for the tests: the functions
behind `oauth.sh expire|revoke|tokens`, served at /test-admin/<op>/ (loopback, a bearer
secret of this instance: DIR/admin-secret) and runnable as `python ops.py OP [USER]`
when the server is stopped.

    expire            every live access token expires now
    revoke [USER]     revokes every refresh token (of USER) and its access token, as
                      "sign out everywhere" does
    tokens            counts: access tokens live and all, refresh tokens live and revoked
"""
import hmac
import json
import os
import sys
from datetime import timedelta


def expire(user=None):
    from django.utils import timezone
    from oauth2_provider.models import get_access_token_model
    now = timezone.now()
    n = get_access_token_model().objects.filter(expires__gt=now).update(expires=now - timedelta(seconds=1))
    return {"expired": n}


def revoke(user=None):
    from oauth2_provider.models import get_refresh_token_model
    rts = get_refresh_token_model().objects.filter(revoked__isnull=True)
    if user:
        rts = rts.filter(user__username=user)
    n = 0
    for rt in rts:
        rt.revoke()  # DOT revokes the pair: the refresh token and its access token
        n += 1
    return {"revoked": n}


def tokens(user=None):
    from django.utils import timezone
    from oauth2_provider.models import get_access_token_model, get_refresh_token_model
    now = timezone.now()
    at, rt = get_access_token_model().objects, get_refresh_token_model().objects
    return {
        "access_live": at.filter(expires__gt=now).count(),
        "access_all": at.count(),
        "refresh_live": rt.filter(revoked__isnull=True).count(),
        "refresh_revoked": rt.filter(revoked__isnull=False).count(),
    }


OPS = {"expire": expire, "revoke": revoke, "tokens": tokens}


def view(request, op):
    from django.http import JsonResponse
    with open(os.path.join(os.environ["OAUTH_DIR"], "admin-secret")) as f:
        secret = f.read().strip()
    given = request.headers.get("Authorization", "").removeprefix("Bearer ")
    if op not in OPS or request.method != "POST" or not hmac.compare_digest(given, secret):
        return JsonResponse({"error": "no"}, status=403)
    return JsonResponse(OPS[op](request.POST.get("user") or None))


if __name__ == "__main__":
    import django
    django.setup()
    if len(sys.argv) < 2 or sys.argv[1] not in OPS:
        sys.exit(__doc__)
    print(json.dumps(OPS[sys.argv[1]](sys.argv[2] if len(sys.argv) > 2 else None)))
