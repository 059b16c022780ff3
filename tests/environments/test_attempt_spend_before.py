"""A scorer reads what the attempt's earlier runs spent from the worker's REBENCH_ATTEMPT_SPEND, and only once."""

from __future__ import annotations

import json
import os

import pytest

from environments.common.result import ATTEMPT_SPEND_ENV, attempt_spend_before
from workstation import scoring


def test_the_scorer_and_the_worker_name_the_same_variable() -> None:
    assert scoring.ATTEMPT_SPEND_ENV == ATTEMPT_SPEND_ENV


def test_the_spend_is_read_and_taken_out_of_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ATTEMPT_SPEND_ENV, json.dumps({"tokens": 350, "cost": 0.3}))
    assert attempt_spend_before() == {"tokens": 350.0, "cost": 0.3}
    # Nothing the scorer starts afterwards inherits it.
    assert ATTEMPT_SPEND_ENV not in os.environ
    assert attempt_spend_before() == {"tokens": 0.0, "cost": 0.0}


@pytest.mark.parametrize(
    "given",
    ["", "not json", "[1, 2]", '{"tokens": -1, "cost": "0.5"}', '{"tokens": true, "cost": null}', '{"tokens": 1e999}'],
)
def test_a_missing_or_malformed_spend_counts_as_nothing_spent(monkeypatch: pytest.MonkeyPatch, given: str) -> None:
    monkeypatch.setenv(ATTEMPT_SPEND_ENV, given)
    assert attempt_spend_before() == {"tokens": 0.0, "cost": 0.0}
