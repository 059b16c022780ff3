"""Numbers as people read them: working time as h:mm, constants to four significant digits (exact on hover)."""

from __future__ import annotations

import pytest
from django.template import Context, Template
from django.test import Client

from rebench_site.templatetags.humane import duration_hm, significant
from tests import factories


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [(28800, "8:00"), (103, "0:01"), (59.9, "0:00"), (3600 * 72 + 60 * 5, "72:05"), (None, "—"), ("x", "—")],
)
def test_working_time_reads_as_hours_and_minutes(seconds: object, shown: str) -> None:
    assert duration_hm(seconds) == shown


def test_scores_read_to_four_significant_digits() -> None:
    assert significant(1.8141730640649552) == "1.814"
    assert significant(21 / 165) == "0.1273"
    assert significant(0.0) == "0"
    assert significant(None) == "—"


def test_the_filters_need_no_load_in_any_template() -> None:
    assert Template("{{ s|duration_hm }} {{ x|significant }}").render(Context({"s": 5400, "x": 2.196224077})) == (
        "1:30 2.196"
    )


@pytest.mark.django_db
def test_the_environment_page_shows_short_constants_and_the_exact_ones_on_hover() -> None:
    environment = factories.environment("ai_rd_restricted_mlm")
    client = Client()
    client.force_login(factories.expert())
    html = client.get(f"/environments/{environment.slug}/").content.decode()
    assert f"{environment.starting_score:.4g} → {environment.reference_score:.4g}" in html
    assert f'title="{environment.starting_score} → {environment.reference_score}"' in html
