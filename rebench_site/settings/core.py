"""The site itself: debug, the secret key, the data folder, apps, middleware, templates, static files, logging."""

from __future__ import annotations

import os
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from rebench_site.settings.env import env_bool, env_int, env_list, env_str

# The project root (this file is rebench_site/settings/core.py).
BASE_DIR = Path(__file__).resolve().parent.parent.parent

DEBUG = env_bool("DEBUG", True)
DEV_SECRET_KEY = "dev-only-insecure-key-do-not-use-in-production"  # noqa: S105 - development default only
SECRET_KEY_MIN_LENGTH = 50
SECRET_KEY_MIN_DISTINCT_CHARACTERS = 5


def secret_key_problem(key: str) -> str | None:
    """Why `key` is too weak to sign sessions, password-reset links and CSRF tokens in production (None: it isn't)."""
    if key == DEV_SECRET_KEY or key.startswith("django-insecure"):
        return "it is a development key"
    if len(key) < SECRET_KEY_MIN_LENGTH:
        return f"it has {len(key)} characters; at least {SECRET_KEY_MIN_LENGTH} are needed"
    if len(set(key)) < SECRET_KEY_MIN_DISTINCT_CHARACTERS:
        return f"it has {len(set(key))} distinct characters; at least {SECRET_KEY_MIN_DISTINCT_CHARACTERS} are needed"
    return None


SECRET_KEY = env_str("SECRET_KEY")
# Old keys still accepted for signatures (sessions, reset links) while a new SECRET_KEY rolls out.
SECRET_KEY_FALLBACKS = env_list("SECRET_KEY_FALLBACKS", [])
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off (production).")
    SECRET_KEY = DEV_SECRET_KEY
if not DEBUG:
    # Anyone who knows or guesses the key can forge a session for any user: refuse to start.
    _GENERATE_KEY = "python -c 'import secrets; print(secrets.token_urlsafe(64))'"
    for _name, _key in [("SECRET_KEY", SECRET_KEY), *(("SECRET_KEY_FALLBACKS", k) for k in SECRET_KEY_FALLBACKS)]:
        if (_problem := secret_key_problem(_key)) is not None:
            raise ImproperlyConfigured(
                f"{_name} is too weak for production (DEBUG off): {_problem}. Make one with {_GENERATE_KEY}"
            )

DATA_DIR = Path(env_str("DATA_DIR", str(BASE_DIR / "data")))
if os.geteuid() == 0:
    # As root, everything the site writes (the SQLite database and its journals, recordings,
    # uploads, logs) is root's alone unless it says otherwise; what an attempt's or tmux's user must
    # reach is given to them explicitly. The data folder itself may be crossed, not listed.
    os.umask(0o077)
DATA_DIR.mkdir(parents=True, exist_ok=True)
if os.geteuid() == 0:
    DATA_DIR.chmod(0o711)

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])
SITE_URL = env_str("SITE_URL", "http://127.0.0.1:8000")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "channels",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "axes",
    "rebench_site",
    "audit",
    "environments",
    "trials",
    "graders",
    "graders.imports",
    "graders.leaderboards",
    "review",
    "review.classifier",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "rebench_site.csp.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "rebench_site.middleware.RejectNulMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # After authentication: the user's profile names their zone.
    "rebench_site.middleware.TimeZoneMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: it turns a locked-out login into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "rebench_site.urls"
WSGI_APPLICATION = None
ASGI_APPLICATION = "rebench_site.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "rebench_site.roles.roles_context",
                "rebench_site.context.site_context",
            ],
            "builtins": ["rebench_site.templatetags.humane"],
        },
    }
]

LANGUAGE_CODE = "en-gb"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = DATA_DIR / "staticfiles"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # whitenoise warns on every request when it is missing
STATICFILES_DIRS = [BASE_DIR / "static"]
WHITENOISE_USE_FINDERS = DEBUG
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(DATA_DIR / "media")))
MEDIA_URL = "/media/"
# Stored files (recordings, uploads, classifier heads) are the server's alone: Django's default
# would make them world-readable whatever the umask.
FILE_UPLOAD_PERMISSIONS = 0o600
FILE_UPLOAD_DIRECTORY_PERMISSIONS = 0o700

# Client mistakes are logged without tracebacks and at most CLIENT_LOG_BURST times per window and
# message (rebench_site/log_filters.py): a client can't fill the disk.
CLIENT_LOG_BURST = env_int("CLIENT_LOG_BURST", 20)
CLIENT_LOG_WINDOW_SECONDS = env_int("CLIENT_LOG_WINDOW_SECONDS", 60)
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"client_noise": {"()": "rebench_site.log_filters.ClientNoiseFilter"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "filters": ["client_noise"]}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
}
