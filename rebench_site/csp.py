"""The Content-Security-Policy header: scripts only from this site, never inline.

An injected `<script>` or `onclick=` (a completion, a note or an environment's text that escaped
escaping) does not run. Pages load their code from static files and pass data in `data-`
attributes or `json_script`; where inline code can't be avoided, `<script nonce="{{ request.csp_nonce }}">`
runs (the nonce is new on every response, and only responses that used it carry it).
"""

from __future__ import annotations

import secrets

from django.conf import settings
from django.core.exceptions import DisallowedHost
from django.http import HttpRequest, HttpResponse
from django.utils.deprecation import MiddlewareMixin

HEADER = "Content-Security-Policy"
REPORT_ONLY_HEADER = "Content-Security-Policy-Report-Only"

BASE_POLICY: dict[str, tuple[str, ...]] = {
    "default-src": ("'self'",),
    "script-src": ("'self'",),
    # Styles may be inline: the templates use style attributes and <style> blocks, and the vendored
    # libraries set styles at run time (xterm.js adds <style> elements, Vega's SVG style attributes).
    # A style can't run code; scripts, which can, get no such allowance. htmx's own indicator style
    # is turned off in base.html's htmx-config (its rules are in site.css) so it needs none of this.
    "style-src": ("'self'", "'unsafe-inline'"),
    # Vega and the players draw with data: and blob: images; fonts in the vendored CSS are data: URIs.
    "img-src": ("'self'", "data:", "blob:"),
    "font-src": ("'self'", "data:"),
    # fetch/htmx to this site; the terminal's WebSocket origin is added per request (see below).
    "connect-src": ("'self'",),
    "object-src": ("'none'",),
    "base-uri": ("'self'",),
    "form-action": ("'self'",),
    "frame-ancestors": ("'none'",),
}

# Pages that need more than the base policy, by URL name: what, and why.
PAGE_SOURCES: dict[str, dict[str, tuple[str, ...]]] = {
    # asciinema-player's terminal emulator is WebAssembly compiled in the page; 'wasm-unsafe-eval'
    # allows compiling WebAssembly only, not eval() or new Function() of JavaScript.
    "trials:terminal-replay": {"script-src": ("'wasm-unsafe-eval'",)},
}


class Nonce:
    """A per-response nonce, made the first time a template renders it."""

    def __init__(self) -> None:
        self._value: str | None = None

    def __str__(self) -> str:
        if self._value is None:
            self._value = secrets.token_urlsafe(18)
        return self._value

    @property
    def used(self) -> bool:
        return self._value is not None


def websocket_origin(request: HttpRequest) -> str | None:
    """ws(s)://host of this request: CSP 'self' covers WebSockets only in newer browsers."""
    try:
        host = request.get_host()
    except DisallowedHost:  # answered with a 400 already; the header must not turn it into a 500
        return None
    return f"{'wss' if request.is_secure() else 'ws'}://{host}"


def policy_for(request: HttpRequest) -> str:
    directives = {name: list(sources) for name, sources in BASE_POLICY.items()}
    origin = websocket_origin(request)
    if origin:
        directives["connect-src"].append(origin)
    nonce = getattr(request, "csp_nonce", None)
    if isinstance(nonce, Nonce) and nonce.used:
        directives["script-src"].append(f"'nonce-{nonce}'")
    match = getattr(request, "resolver_match", None)
    view_name = match.view_name if match else ""
    for name, sources in PAGE_SOURCES.get(view_name, {}).items():
        directives.setdefault(name, []).extend(sources)
    if settings.CSP_REPORT_URI:
        directives["report-uri"] = [settings.CSP_REPORT_URI]
    return "; ".join(f"{name} {' '.join(sources)}" for name, sources in directives.items())


class ContentSecurityPolicyMiddleware(MiddlewareMixin):
    """Sets the policy on every response (CSP_REPORT_ONLY: reports violations without blocking)."""

    def process_request(self, request: HttpRequest) -> None:
        request.csp_nonce = Nonce()  # type: ignore[attr-defined]  # for the templates, on this request

    def process_response(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        header = REPORT_ONLY_HEADER if settings.CSP_REPORT_ONLY else HEADER
        if header not in response:
            response[header] = policy_for(request)
        return response
