from django.contrib.auth import views as auth_views
from django.urls import include, path
from django.views.decorators.csrf import csrf_exempt

import ops

urlpatterns = [
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    # For the tests only (oauth.sh expire|revoke|tokens): a bearer secret in DIR/admin-secret.
    path("test-admin/<str:op>/", csrf_exempt(ops.view)),
    path("o/", include("oauth2_provider.urls", namespace="oauth2_provider")),
]
