"""What a run may spend: tokens and money reserved at their worst case before a request, settled after."""

from __future__ import annotations

import json
import math
import threading
from dataclasses import dataclass, field
from typing import Any

from .client import Usage

# A byte-level BPE token covers at least one byte of text; chat templates add a few tokens per
# message. So bytes + these overheads bound the prompt's tokens from above, for any such tokenizer.
TOKENS_PER_MESSAGE = 8
TOKENS_PER_REQUEST = 16


class BudgetExceeded(Exception):
    """A request would not fit in what is left of the budget."""


@dataclass(frozen=True)
class Prices:
    """Cost per million tokens; zero prices make the cost budget count nothing."""

    input_per_mtok: float = 0.0
    output_per_mtok: float = 0.0

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        return (prompt_tokens * self.input_per_mtok + completion_tokens * self.output_per_mtok) / 1e6


@dataclass
class Reservation:
    prompt_tokens: int
    completion_tokens: int
    cost: float
    per_choice: int = 0

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass
class Budget:
    """Tokens and/or money a run may spend; None means that kind is not limited.

    Every request first reserves its worst case; settling replaces the reservation with what the
    endpoint reports it used. So the spend never passes the limit as long as the endpoint's counts
    stay within the worst case (which `prompt_token_bound` makes true for byte-level tokenizers).
    """

    max_tokens: int | None = None
    max_cost: float | None = None
    prices: Prices = field(default_factory=Prices)
    spent_tokens: int = 0
    spent_cost: float = 0.0
    requests: int = 0
    refused: int = 0
    _reserved_tokens: int = 0
    _reserved_cost: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def completion_allowance(self, prompt_tokens: int, n: int = 1) -> int | None:
        """The most completion tokens per choice a request may ask for now; None when unlimited."""
        n = max(n, 1)
        limits = []
        if self.max_tokens is not None:
            limits.append((self.max_tokens - self.spent_tokens - self._reserved_tokens - prompt_tokens) // n)
        if self.max_cost is not None:
            left = self.max_cost - self.spent_cost - self._reserved_cost - self.prices.cost(prompt_tokens, 0)
            if left < 0:
                limits.append(-1)
            elif self.prices.output_per_mtok > 0:
                limits.append(math.floor(left * 1e6 / self.prices.output_per_mtok) // n)
        return min(limits) if limits else None

    def reserve(self, prompt_tokens: int, max_completion_tokens: int, n: int = 1) -> Reservation:
        """Hold the worst case of one request, its completion cut to what is left; BudgetExceeded if nothing is."""
        n = max(n, 1)
        with self._lock:
            allowance = self.completion_allowance(prompt_tokens, n)
            per_choice = max_completion_tokens if allowance is None else min(max_completion_tokens, allowance)
            if per_choice < 1:
                self.refused += 1
                raise BudgetExceeded(self._refusal(prompt_tokens, max_completion_tokens * n))
            completion = per_choice * n
            reservation = Reservation(
                prompt_tokens, completion, self.prices.cost(prompt_tokens, completion), per_choice
            )
            self._reserved_tokens += reservation.tokens
            self._reserved_cost += reservation.cost
            self.requests += 1
            return reservation

    def settle(self, reservation: Reservation, usage: Usage | None) -> None:
        """Replace the reservation with what was used; unknown usage (None) is charged at the worst case,
        a request the endpoint refused (zero usage) at nothing."""
        with self._lock:
            self._reserved_tokens -= reservation.tokens
            self._reserved_cost -= reservation.cost
            if usage is None:
                self.spent_tokens += reservation.tokens
                self.spent_cost += reservation.cost
            else:
                self.spent_tokens += usage.total_tokens
                self.spent_cost += self.prices.cost(usage.prompt_tokens, usage.completion_tokens)

    def _refusal(self, prompt_tokens: int, completion_tokens: int) -> str:
        parts = []
        if self.max_tokens is not None:
            parts.append(f"{self.spent_tokens} of {self.max_tokens} tokens spent")
        if self.max_cost is not None:
            parts.append(f"{self.spent_cost:.4f} of {self.max_cost:g} spent")
        return (
            f"Budget exhausted: this request needs up to {prompt_tokens} prompt + {completion_tokens} completion "
            f"tokens and only what is left may be spent ({'; '.join(parts)})."
        )

    def summary(self) -> dict[str, Any]:
        with self._lock:
            return {
                "spent_tokens": self.spent_tokens,
                "max_tokens": self.max_tokens,
                "spent_cost": round(self.spent_cost, 6),
                "max_cost": self.max_cost,
                "requests": self.requests,
                "refused": self.refused,
            }


def budget_limits(settings: dict[str, Any]) -> tuple[int | None, float | None, Prices]:
    """The limits a configuration's settings give (`budget_tokens`, `budget_cost`; unset or 0: that
    kind is not limited) and the prices (`price_input`, `price_output`, per million tokens)."""
    tokens = int(settings["budget_tokens"]) if settings.get("budget_tokens") else None
    cost = float(settings["budget_cost"]) if settings.get("budget_cost") else None
    return tokens, cost, Prices(float(settings.get("price_input") or 0), float(settings.get("price_output") or 0))


def prompt_token_bound(messages: Any) -> int:
    """An upper bound on the prompt's tokens: its bytes plus template overheads (see TOKENS_PER_MESSAGE)."""
    total = TOKENS_PER_REQUEST
    for message in messages if isinstance(messages, list) else [messages]:
        total += TOKENS_PER_MESSAGE + len(json.dumps(message, ensure_ascii=False).encode())
    return total
