"""OpenAI-compatible chat endpoints: a client, a spending budget, a budget-enforcing proxy and a local server.

Standard library only: the package is imported by the site (`environments.common.llm`) and, copied
beside a scorer (`common/llm/`), by scorers that run an expert's code against a model.

The budget proxy is how a scaffold gets a model without getting the key or an open tab: the scorer
holds the real key, starts a `BudgetProxy` and gives the scaffold only the proxy's address and a
one-run token. The proxy forces the configured model, reserves each request's worst-case cost
before forwarding it (so concurrent requests can't overshoot) and refuses with HTTP 429 what would
not fit. It listens on 127.0.0.1, or on a Unix socket (`unix_socket=`): a scorer's harness bridges
the sandboxed scaffold's 127.0.0.1:PORT to that socket, so the scaffold needs no network at all.

The package holds one module per part (client, budget, servers, proxy, local); every public name is
re-exported here, and the modules import each other relatively, so that the copy beside a scorer
(`from common import llm`) works as the site's `environments.common.llm` does.
"""

from __future__ import annotations

from .budget import (
    TOKENS_PER_MESSAGE,
    TOKENS_PER_REQUEST,
    Budget,
    BudgetExceeded,
    Prices,
    Reservation,
    budget_limits,
    prompt_token_bound,
)
from .client import MAX_RESPONSE_BYTES, ChatClient, Completion, EndpointError, Usage, parse_completion
from .local import LocalChatServer, RawAnswer, Responder, serve_from_command_line
from .proxy import (
    DEFAULT_MAX_COMPLETION_TOKENS,
    MAX_CHOICES,
    BudgetProxy,
    InvalidRequest,
    checked_request,
    forward_reserved,
)
from .servers import MAX_REQUEST_BYTES

__all__ = [
    "DEFAULT_MAX_COMPLETION_TOKENS",
    "MAX_CHOICES",
    "MAX_REQUEST_BYTES",
    "MAX_RESPONSE_BYTES",
    "TOKENS_PER_MESSAGE",
    "TOKENS_PER_REQUEST",
    "Budget",
    "BudgetExceeded",
    "BudgetProxy",
    "ChatClient",
    "Completion",
    "EndpointError",
    "InvalidRequest",
    "LocalChatServer",
    "Prices",
    "RawAnswer",
    "Reservation",
    "Responder",
    "Usage",
    "budget_limits",
    "checked_request",
    "forward_reserved",
    "parse_completion",
    "prompt_token_bound",
    "serve_from_command_line",
]
