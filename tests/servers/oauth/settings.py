"""The Django project of the tests' authorization server (tests/servers/oauth.sh).

Loopback only, for tests: DEBUG off, a throwaway secret key, fast password hashing.
Everything that varies comes from the environment oauth.sh sets:
OAUTH_DIR (the database), OAUTH_BASE_URL, OAUTH_ACCESS_SECONDS, OAUTH_REFRESH_SECONDS,
OAUTH_ROTATE (1 or 0), OAUTH_DEVICE_INTERVAL, OAUTH_TOKEN_LENGTH (tokens.py).
"""
import os

from tokens import access_seconds

DIR = os.environ["OAUTH_DIR"]
BASE_URL = os.environ["OAUTH_BASE_URL"].rstrip("/")

SECRET_KEY = os.environ.get("OAUTH_DJANGO_SECRET", "tests-only-not-a-secret")
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
ROOT_URLCONF = "urls"
WSGI_APPLICATION = "wsgi.application"
USE_TZ = True
TIME_ZONE = "UTC"

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "oauth2_provider",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
TEMPLATES = [{
    "BACKEND": "django.template.backends.django.DjangoTemplates",
    "DIRS": [os.path.join(os.path.dirname(__file__), "templates")],
    "APP_DIRS": True,
    "OPTIONS": {"context_processors": [
        "django.template.context_processors.request",
        "django.contrib.auth.context_processors.auth",
        "django.contrib.messages.context_processors.messages",
    ]},
}]
DATABASES = {"default": {
    "ENGINE": "django.db.backends.sqlite3",
    "NAME": os.path.join(DIR, "oauth.sqlite3"),
    # Dovecot's introspection and the tests' requests arrive together.
    "OPTIONS": {"timeout": 20, "transaction_mode": "IMMEDIATE"},
}}
# MD5 only because these are test passwords on loopback: PBKDF2's million rounds would
# cost ~0.5 s on every client authentication (Dovecot's introspection included).
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
LOGIN_URL = "/accounts/login/"
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,  # gunicorn's access log goes on
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"django": {"handlers": ["console"], "level": "WARNING"},
                "oauth2_provider": {"handlers": ["console"], "level": "INFO"}},
}

OAUTH2_PROVIDER = {
    # A callable, read at each issue: `oauth.sh lifetime` changes it while the server runs.
    "ACCESS_TOKEN_EXPIRE_SECONDS": access_seconds,
    "REFRESH_TOKEN_EXPIRE_SECONDS": int(os.environ["OAUTH_REFRESH_SECONDS"]) if os.environ.get("OAUTH_REFRESH_SECONDS") else None,
    "ROTATE_REFRESH_TOKEN": os.environ.get("OAUTH_ROTATE", "1") == "1",
    "REFRESH_TOKEN_GRACE_PERIOD_SECONDS": 0,
    "SCOPES": {
        "mail": "Read and send your mail (IMAP and SMTP)",
        "offline_access": "Keep access while you are away",
        "introspection": "Check tokens (the mail server)",
    },
    "DEFAULT_SCOPES": ["mail", "offline_access"],
    "PKCE_REQUIRED": True,
    "OAUTH_DEVICE_VERIFICATION_URI": BASE_URL + "/o/device/",
    "OAUTH_DEVICE_VERIFICATION_URI_COMPLETE": BASE_URL + "/o/device/?user_code={user_code}",
    "DEVICE_FLOW_INTERVAL": int(os.environ.get("OAUTH_DEVICE_INTERVAL", "1")),
    "ALLOWED_REDIRECT_URI_SCHEMES": ["http", "https"],
    "ACCESS_TOKEN_GENERATOR": "tokens.access_token",
    "REFRESH_TOKEN_GENERATOR": "oauthlib.oauth2.rfc6749.tokens.random_token_generator",
}
