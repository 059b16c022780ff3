"""The Content-Security-Policy header, and templates that need no inline script to work under it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.template import engines
from django.test import RequestFactory
from django.urls import resolve

from rebench_site import csp

ROOT = Path(__file__).resolve().parents[2]


def _directives(header: str) -> dict[str, list[str]]:
    parsed = {}
    for part in header.split(";"):
        name, *sources = part.split()
        parsed[name] = sources
    return parsed


@pytest.mark.django_db
def test_pages_forbid_inline_scripts_and_allow_the_sites_own_websockets(client) -> None:
    response = client.get("/accounts/login/")
    policy = _directives(response["Content-Security-Policy"])
    assert policy["script-src"] == ["'self'"]
    assert policy["object-src"] == ["'none'"]
    assert policy["frame-ancestors"] == ["'none'"]
    assert policy["base-uri"] == ["'self'"]
    assert "ws://testserver" in policy["connect-src"]
    assert "'unsafe-inline'" in policy["style-src"]  # styles only; see rebench_site/csp.py


@pytest.mark.django_db
def test_logged_in_pages_the_admin_and_the_api_carry_the_policy_too(client, expert) -> None:
    client.force_login(expert)
    for path in ("/", "/accounts/password/change/", "/admin/login/", "/api/reservations/"):
        response = client.get(path, follow=True)
        assert "script-src 'self'" in response["Content-Security-Policy"], path


def test_https_requests_get_the_wss_origin(settings) -> None:
    settings.ALLOWED_HOSTS = ["trials.example.org"]
    request = RequestFactory().get("/", secure=True, HTTP_HOST="trials.example.org")
    assert "wss://trials.example.org" in _directives(csp.policy_for(request))["connect-src"]


@pytest.mark.django_db
def test_a_host_outside_allowed_hosts_is_a_400_not_a_500(client) -> None:
    response = client.get("/accounts/login/", HTTP_HOST="evil.example.com")
    assert response.status_code == 400
    assert "ws://" not in response["Content-Security-Policy"]


def test_only_the_recordings_page_may_compile_webassembly() -> None:
    replay = RequestFactory().get("/attempts/1/recordings/")
    replay.resolver_match = resolve("/attempts/1/recordings/")
    assert replay.resolver_match.view_name == "trials:terminal-replay"
    assert _directives(csp.policy_for(replay))["script-src"] == ["'self'", "'wasm-unsafe-eval'"]
    other = RequestFactory().get("/attempts/1/")
    other.resolver_match = resolve("/attempts/1/")
    assert _directives(csp.policy_for(other))["script-src"] == ["'self'"]


def test_a_nonce_is_in_the_policy_only_when_a_template_used_it() -> None:
    request = RequestFactory().get("/")
    request.csp_nonce = csp.Nonce()  # type: ignore[attr-defined]  # what the CSP middleware sets
    assert "nonce-" not in csp.policy_for(request)
    html = (
        engines["django"].from_string('<script nonce="{{ request.csp_nonce }}">1</script>').render({"request": request})
    )
    nonce = re.search(r'nonce="([^"]+)"', html).group(1)
    assert len(nonce) >= 20
    assert f"'nonce-{nonce}'" in _directives(csp.policy_for(request))["script-src"]
    assert csp.Nonce().__str__() != nonce  # new for every response


@pytest.mark.django_db
def test_report_only_mode_and_a_report_uri_come_from_settings(client, settings) -> None:
    settings.CSP_REPORT_ONLY = True
    settings.CSP_REPORT_URI = "https://reports.example.org/csp"
    response = client.get("/accounts/login/")
    assert "Content-Security-Policy" not in response
    policy = _directives(response["Content-Security-Policy-Report-Only"])
    assert policy["report-uri"] == ["https://reports.example.org/csp"]


def _markup_files() -> list[Path]:
    return sorted([*ROOT.glob("templates/**/*.html"), *ROOT.glob("static/**/*.html")])


INLINE_SCRIPT = re.compile(r"<script\b(?![^>]*\bsrc=)(?![^>]*\btype=\"application/json\")[^>]*>", re.IGNORECASE)
TAG = re.compile(r"<[a-zA-Z][^>]*>", re.DOTALL)
EVENT_HANDLER = re.compile(r"\son[a-z]+\s*=", re.IGNORECASE)


def test_no_template_has_an_inline_script_or_event_handler() -> None:
    found = []
    assert len(_markup_files()) > 40
    for path in _markup_files():
        text = path.read_text()
        for match in INLINE_SCRIPT.finditer(text):
            found.append(f"{path.relative_to(ROOT)}: {match.group(0)}")
        for tag in TAG.finditer(text):
            if EVENT_HANDLER.search(tag.group(0)) or "javascript:" in tag.group(0).lower():
                found.append(f"{path.relative_to(ROOT)}: {tag.group(0)[:80]}")
    assert found == [], (
        "inline code the Content-Security-Policy blocks; use a static file (docs/subsystems/accounts-and-deployment.md)"
    )


def test_the_confirm_and_autosubmit_behaviours_have_their_script_on_every_page() -> None:
    base = (ROOT / "templates/base.html").read_text()
    assert "js/site.js" in base
    assert '"allowEval":false' in base
    assert '"includeIndicatorStyles":false' in base
    assert (ROOT / "static/js/site.js").exists()
