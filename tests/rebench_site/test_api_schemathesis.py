"""Property-based: schemathesis generates requests from the OpenAPI schema, valid and not, and sends them
as each role would. No answer may be a 500, and every answer must match what the schema says of it."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from django.core import signals
from django.core.serializers.json import DjangoJSONEncoder
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, settings
from rest_framework.authtoken.models import Token
from schemathesis.checks import content_type_conformance, not_a_server_error, response_schema_conformance

from review import services as review_services
from tests import factories
from tests.review.conftest import make_completions
from trials import services as trials_services

pytestmark = [pytest.mark.django_db(transaction=False), pytest.mark.timeout(900)]


@pytest.fixture
def api_schema() -> Iterator[Any]:
    # Requests go to the WSGI app in this process, on the test's connection and transaction: as
    # Django's test client does, keep the handler from closing that connection after each one.
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    document = json.loads(json.dumps(SchemaGenerator().get_schema(request=None, public=True), cls=DjangoJSONEncoder))
    schema = schemathesis.openapi.from_dict(document)
    schema.app = get_wsgi_application()
    yield schema
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def role_headers(db: Any) -> dict[str, dict[str, str]]:
    """Tokens of an admin, an expert with an attempt, a reviewer of a queue, a harness and the attempt's
    workstation's agent; and no one."""
    factories.environment()
    admin = factories.admin(username="st-admin")
    expert = factories.expert(username="st-expert")
    attempt = factories.AttemptFactory.create(user=expert, reservation__expert=expert)
    reviewer = factories.reviewer(username="st-reviewer")
    make_completions(5)
    review_services.queue_create(created_by=admin, name="st", policy="random", seed=1)
    harness = factories.UserFactory.create(username="st-harness", roles=["harness"])
    headers = {
        user.username: {"Authorization": f"Token {Token.objects.create(user=user).key}"}
        for user in (admin, expert, reviewer, harness)
    }
    assert attempt.workstation is not None
    agent_token = trials_services.workstation_agent_token_issue(workstation=attempt.workstation, by=None)
    headers["workstation-agent"] = {"Authorization": f"Workstation {agent_token}"}
    headers["anonymous"] = {}
    return headers


schema = schemathesis.pytest.from_fixture("api_schema")


# The API by area, a test each, so parallel workers share the fuzzing; every operation is in one.
AREAS = {
    "attempts": r"^/api/attempts",
    "agent_runs_and_imports": r"^/api/(runs|run-imports)",
    "bookings_and_workstations": r"^/api/(workstations|reservations|environments|ssh-keys)",
    "review_and_leaderboards": r"^/api/(review|leaderboards)",
    "workstation_agent": r"^/api/workstation-agent/",
}


def _fuzzed(area: str) -> Any:
    """The test of one area: each generated case sent as every role."""

    @schema.include(path_regex=AREAS[area]).parametrize()
    @settings(
        max_examples=25,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    def fuzzed(case: Any, role_headers: dict[str, dict[str, str]]) -> None:
        for headers in role_headers.values():
            case.call_and_validate(
                headers=headers, checks=[not_a_server_error, response_schema_conformance, content_type_conformance]
            )

    return fuzzed


test_no_role_gets_a_500_or_an_answer_the_schema_does_not_describe_in_attempts = _fuzzed("attempts")
test_no_role_gets_a_500_or_an_answer_the_schema_does_not_describe_in_agent_runs_and_imports = _fuzzed(
    "agent_runs_and_imports"
)
test_no_role_gets_a_500_or_an_answer_the_schema_does_not_describe_in_bookings_and_workstations = _fuzzed(
    "bookings_and_workstations"
)
test_no_role_gets_a_500_or_an_answer_the_schema_does_not_describe_in_review_and_leaderboards = _fuzzed(
    "review_and_leaderboards"
)
test_no_role_gets_a_500_or_an_answer_the_schema_does_not_describe_in_workstation_agent = _fuzzed("workstation_agent")


def test_every_operation_of_the_api_is_in_one_fuzzed_area() -> None:
    paths = SchemaGenerator().get_schema(request=None, public=True)["paths"]
    for path in paths:
        assert sum(bool(re.match(pattern, path)) for pattern in AREAS.values()) == 1, path
