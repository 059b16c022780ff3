"""Production settings: `check --deploy` is clean, weak keys and malformed values refuse to start, dev stays on http."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

ROOT = Path(__file__).resolve().parents[2]
GOOD_KEY = secrets.token_urlsafe(64)

PRINT_SETTINGS = """
import json, django
django.setup()
from django.conf import settings as s
print(json.dumps({name: getattr(s, name) for name in %r}, default=str))
"""


def _production_env(tmp_path: Path, **overrides: str) -> dict[str, str]:
    env = {
        name: value
        for name, value in os.environ.items()
        # Settings this test means to choose; anything else (PATH, the database) as the run has it.
        if not name.startswith(("SECURE_", "SESSION_", "CSRF_", "EMAIL_", "LOGIN_", "CSP_", "SECRET_KEY"))
    }
    env.update(
        DJANGO_SETTINGS_MODULE="rebench_site.settings",
        DEBUG="false",
        SECRET_KEY=GOOD_KEY,
        ALLOWED_HOSTS="trials.example.org",
        CSRF_TRUSTED_ORIGINS="https://trials.example.org",
        SITE_URL="https://trials.example.org",
        EMAIL_HOST="smtp.example.org",
        DATA_DIR=str(tmp_path / "data"),
    )
    env.update(overrides)
    return env


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False
    )


def _settings_of(env: dict[str, str], *names: str) -> dict[str, object]:
    result = _run(["-c", PRINT_SETTINGS % (names,)], env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_check_deploy_is_clean_with_production_settings(open_tmp) -> None:
    result = _run(["manage.py", "check", "--deploy", "--fail-level", "WARNING"], _production_env(open_tmp))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout, result.stdout + result.stderr


def test_production_defaults_turn_on_https_hsts_secure_cookies_and_smtp(tmp_path) -> None:
    values = _settings_of(
        _production_env(tmp_path),
        "SECURE_SSL_REDIRECT",
        "SECURE_HSTS_SECONDS",
        "SECURE_HSTS_INCLUDE_SUBDOMAINS",
        "SESSION_COOKIE_SECURE",
        "CSRF_COOKIE_SECURE",
        "SECURE_PROXY_SSL_HEADER",
        "EMAIL_BACKEND",
        "EMAIL_PORT",
        "EMAIL_USE_TLS",
    )
    assert values == {
        "SECURE_SSL_REDIRECT": True,
        "SECURE_HSTS_SECONDS": 365 * 24 * 3600,
        "SECURE_HSTS_INCLUDE_SUBDOMAINS": True,
        "SESSION_COOKIE_SECURE": True,
        "CSRF_COOKIE_SECURE": True,
        "SECURE_PROXY_SSL_HEADER": ["HTTP_X_FORWARDED_PROTO", "https"],
        "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "EMAIL_PORT": 587,
        "EMAIL_USE_TLS": True,
    }


def test_each_https_setting_can_be_set_from_the_environment(tmp_path) -> None:
    env = _production_env(
        tmp_path,
        SECURE_SSL_REDIRECT="false",
        SECURE_HSTS_SECONDS="600",
        SECURE_PROXY_SSL_HEADER="X-Forwarded-Scheme,https",
        SECURE_REDIRECT_EXEMPT="^api/,^healthz$",
        EMAIL_USE_SSL="true",
    )
    values = _settings_of(
        env,
        "SECURE_SSL_REDIRECT",
        "SECURE_HSTS_SECONDS",
        "SECURE_PROXY_SSL_HEADER",
        "SECURE_REDIRECT_EXEMPT",
        "EMAIL_PORT",
    )
    assert values == {
        "SECURE_SSL_REDIRECT": False,
        "SECURE_HSTS_SECONDS": 600,
        "SECURE_PROXY_SSL_HEADER": ["HTTP_X_FORWARDED_SCHEME", "https"],
        "SECURE_REDIRECT_EXEMPT": ["^api/", "^healthz$"],
        "EMAIL_PORT": 465,
    }
    assert _settings_of(_production_env(tmp_path, SECURE_PROXY_SSL_HEADER="off"), "SECURE_PROXY_SSL_HEADER") == {
        "SECURE_PROXY_SSL_HEADER": None
    }


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"SECRET_KEY": "x" * 20}, "SECRET_KEY is too weak for production (DEBUG off): it has 20 characters"),
        ({"SECRET_KEY": "ab" * 40}, "SECRET_KEY is too weak for production (DEBUG off): it has 2 distinct characters"),
        ({"SECRET_KEY": "dev-only-insecure-key-do-not-use-in-production"}, "it is a development key"),
        ({"SECRET_KEY": "django-insecure-" + GOOD_KEY}, "it is a development key"),
        ({"SECRET_KEY": ""}, "SECRET_KEY must be set when DEBUG is off"),
        ({"SECRET_KEY_FALLBACKS": "short"}, "SECRET_KEY_FALLBACKS is too weak for production"),
        ({"SECURE_PROXY_SSL_HEADER": "X-Forwarded-Proto"}, "SECURE_PROXY_SSL_HEADER must be 'Header-Name,value'"),
        ({"SECURE_PROXY_SSL_HEADER": "X Forwarded,https"}, "SECURE_PROXY_SSL_HEADER must be 'Header-Name,value'"),
        ({"SECURE_HSTS_SECONDS": "-1"}, "SECURE_HSTS_SECONDS must be at least 0"),
        ({"SECURE_HSTS_SECONDS": "a year"}, "SECURE_HSTS_SECONDS must be an integer"),
        ({"LOGIN_FAILURE_LIMIT": "0"}, "LOGIN_FAILURE_LIMIT must be at least 1"),
        ({"LOGIN_LOCKOUT_MINUTES": "soon"}, "LOGIN_LOCKOUT_MINUTES must be an integer"),
        ({"LOGIN_LOCK_BY_USERNAME": "false", "LOGIN_LOCK_BY_ADDRESS": "no"}, "can't both be off"),
        ({"EMAIL_USE_SSL": "true", "EMAIL_USE_TLS": "true"}, "EMAIL_USE_SSL and EMAIL_USE_TLS are exclusive"),
        ({"SESSION_COOKIE_SECURE": "maybe"}, "SESSION_COOKIE_SECURE must be a boolean"),
    ],
)
def test_a_weak_key_or_a_malformed_value_stops_the_start_with_a_clear_message(tmp_path, overrides, message) -> None:
    result = _run(["manage.py", "check"], _production_env(tmp_path, **overrides))
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert message in result.stderr, result.stderr[-2000:]


def test_in_debug_the_dev_key_and_plain_http_still_work(tmp_path) -> None:
    env = _production_env(tmp_path, DEBUG="true", SECRET_KEY="", ALLOWED_HOSTS="", EMAIL_HOST="")
    values = _settings_of(
        env, "SECRET_KEY", "SECURE_SSL_REDIRECT", "SECURE_HSTS_SECONDS", "SESSION_COOKIE_SECURE", "EMAIL_BACKEND"
    )
    assert values == {
        "SECRET_KEY": "dev-only-insecure-key-do-not-use-in-production",
        "SECURE_SSL_REDIRECT": False,
        "SECURE_HSTS_SECONDS": 0,
        "SESSION_COOKIE_SECURE": False,
        "EMAIL_BACKEND": "django.core.mail.backends.console.EmailBackend",
    }


def test_the_development_server_answers_plain_http_without_redirecting(client, db) -> None:
    # The test run has `make run`'s settings (DEBUG on): http://127.0.0.1:8000/ must not bounce to https.
    assert not settings.SECURE_SSL_REDIRECT
    response = client.get("/accounts/login/", HTTP_HOST="127.0.0.1:8000")
    assert response.status_code == 200
    assert "Strict-Transport-Security" not in response
