"""Markdown instructions: rendered safely on the attempt and environment pages, and printed by `task instructions`."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.test import Client

from environments.instructions import render
from tests import factories
from tests.graders.conftest import PACKAGES
from tests.graders.conftest import package_environment as environment_row
from tests.trials.test_task_cli import run_task
from trials import services as trials_services
from trials.models import Attempt

MARKDOWN = (PACKAGES / "grading_test_markdown" / "instructions.md").read_text()


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def assert_rendered_and_safe(html: str) -> None:
    assert "<h1>Make it faster</h1>" in html
    assert "<strong><code>solution.py</code></strong>" in html
    assert '<a href="https://triton-lang.org/" rel="noopener noreferrer nofollow">Triton docs</a>' in html
    assert '<td style="text-align:right">1.6 ms</td>' in html
    assert '<code class="language-python">def prefix_sum(x): ...' in html
    # Raw HTML in the Markdown is shown as text, never as markup; the javascript: link is no link.
    assert "&lt;script&gt;document.title" in html
    assert "&lt;img src=" in html
    assert "<script>document.title" not in html
    assert "<img" not in html
    assert 'href="javascript:' not in html


def test_markdown_is_rendered_and_raw_html_in_it_is_escaped() -> None:
    assert_rendered_and_safe(render(MARKDOWN))


def test_html_the_renderer_would_pass_is_still_cleaned() -> None:
    # An image is Markdown the renderer turns into <img>; its attributes are cleaned to the allowed few.
    html = render('![chart](https://example.com/c.png "t")\n\n[x](vbscript:msgbox) [y](data:text/html,hi)')
    assert '<img src="https://example.com/c.png" alt="chart" title="t">' in html
    assert "vbscript:" not in html.split("[x]")[0]
    assert 'href="vbscript' not in html
    assert 'href="data:' not in html


def test_the_attempt_page_renders_the_instructions_safely(attempt_on: Callable[..., Attempt]) -> None:
    attempt = attempt_on("grading_test_markdown")
    response = logged_in(attempt.user).get(f"/attempts/{attempt.pk}/")
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="environment-instructions"' in html
    assert_rendered_and_safe(html)


def test_another_expert_does_not_get_the_attempt_page(attempt_on: Callable[..., Attempt]) -> None:
    attempt = attempt_on("grading_test_markdown")
    response = logged_in(factories.expert(username="mallory")).get(f"/attempts/{attempt.pk}/")
    assert response.status_code in (403, 404)


def test_the_environment_page_renders_the_instructions_for_experts_and_refuses_reviewers(grading_dirs, db) -> None:
    environment = environment_row("grading_test_markdown", description="Make prefix sums fast.")
    page = logged_in(factories.expert(username="ada")).get(f"/environments/{environment.slug}/")
    assert page.status_code == 200
    assert_rendered_and_safe(page.content.decode())
    assert logged_in(factories.reviewer(username="rita")).get(f"/environments/{environment.slug}/").status_code == 403


@pytest.mark.django_db(transaction=True)
def test_task_instructions_prints_the_markdown_text(live_server, grading_dirs, tmp_path) -> None:
    environment = environment_row("grading_test_markdown")
    attempt = factories.AttemptFactory.create(reservation__environment=environment)
    token = trials_services.attempt_token_issue(attempt=attempt)
    result = run_task(live_server, attempt, token, tmp_path, "instructions")
    assert result.returncode == 0, result.stderr
    assert result.stdout.rstrip("\n") == MARKDOWN.rstrip("\n")
