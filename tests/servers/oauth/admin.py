"""What an administrator of the authorization server does, for the tests (oauth.sh):

    python admin.py expire            every live access token expires now
    python admin.py revoke [USER]     revokes every refresh token (of USER) and its access
                                      token, as "sign out everywhere" does
    python admin.py tokens            counts, as JSON: access tokens live and all, refresh
                                      tokens live and revoked (what a test can assert on)
"""
import json
import sys
from datetime import timedelta

import django

django.setup()

from django.utils import timezone  # noqa: E402
from oauth2_provider.models import get_access_token_model, get_refresh_token_model  # noqa: E402

AccessToken, RefreshToken = get_access_token_model(), get_refresh_token_model()
cmd = sys.argv[1] if len(sys.argv) > 1 else ""
now = timezone.now()
if cmd == "expire":
    n = AccessToken.objects.filter(expires__gt=now).update(expires=now - timedelta(seconds=1))
    print(f"expired {n} access token(s)")
elif cmd == "revoke":
    rts = RefreshToken.objects.filter(revoked__isnull=True)
    if len(sys.argv) > 2:
        rts = rts.filter(user__username=sys.argv[2])
    n = 0
    for rt in rts:
        rt.revoke()  # DOT revokes the pair: the refresh token and its access token
        n += 1
    print(f"revoked {n} refresh token(s)")
elif cmd == "tokens":
    print(json.dumps({
        "access_live": AccessToken.objects.filter(expires__gt=now).count(),
        "access_all": AccessToken.objects.count(),
        "refresh_live": RefreshToken.objects.filter(revoked__isnull=True).count(),
        "refresh_revoked": RefreshToken.objects.filter(revoked__isnull=False).count(),
    }))
else:
    sys.exit(__doc__)
