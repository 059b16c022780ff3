"""Accounts (passwords, login throttling, reset mail) and HTTPS and the browser's protections."""

from __future__ import annotations

from datetime import timedelta

from django.core.exceptions import ImproperlyConfigured

from rebench_site.settings.core import DEBUG
from rebench_site.settings.env import env_bool, env_int, env_int_at_least, env_list, env_proxy_ssl_header, env_str

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
