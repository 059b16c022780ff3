"""ASGI entry point: Django for HTTP, Channels for WebSockets (routes arrive with the terminal)."""

import gc
import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rebench_site.settings")
django.setup(set_prefix=False)  # as django.core.asgi.get_asgi_application does

from rebench_site.asgi_http import OneHopASGIHandler  # noqa: E402 - Django must be set up first

# Django's handler, with each request's middleware and view in one thread (rebench_site/asgi_http.py).
django_asgi_app = OneHopASGIHandler()

from channels.auth import AuthMiddlewareStack  # noqa: E402 - Django must be set up before Channels imports models
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from rebench_site.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
    }
)

# The server process lives for days and the ~100k objects made at start-up never die, yet every
# full garbage collection walks them all (tens of ms, far more on a busy machine), stalling every
# open terminal on the event loop: a keystroke's echo waits for it. Freeze them out of the collector.
gc.freeze()
