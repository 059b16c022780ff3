"""Leaderboard pages, exports and API: who sees what, the same numbers everywhere, bounded queries."""

from __future__ import annotations

import csv
import io

import pytest
from django.test import Client
from django.urls import reverse

from graders.leaderboards import method, selectors, services
from tests import factories
from tests.leaderboards.leaderboard_data import ended_run

AGENT = ("claude", "claude-3-5-sonnet", "triframe")
AGENT_KEY = "agent:" + "|".join(AGENT)


@pytest.fixture
def board(db, expert, other_expert):
    """Two environments: ada's and grace's attempts, an imported human and an agent; then one snapshot."""
    chat = factories.environment("ai_rd_nanogpt_chat_rl")
    rust = factories.environment("ai_rd_rust_codecontests_inference")
    ended_run(chat, [(1, 0.60), (4, 0.75)], user=expert)
    ended_run(chat, [(2, 0.70)], user=other_expert)
    ended_run(rust, [(3, 0.05)], user=other_expert)
    ended_run(rust, [(3, 0.08)], label="imported-human")
    for raw in (0.55, 0.62, 0.58, 0.66):
        ended_run(chat, [(1, raw)], agent=AGENT, hours=2)
    ended_run(rust, [(1, 0.02)], agent=AGENT, hours=2)
    return {"chat": chat, "rust": rust, "snapshot": services.leaderboard_snapshot_create()}


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_before_any_computation_the_page_says_so_and_offers_an_admin_compute_now(db, admin_user) -> None:
    factories.environment("ai_rd_nanogpt_chat_rl")
    client = _client(admin_user)
    page = client.get(reverse("leaderboards:overview")).content.decode()
    assert "No leaderboard has been computed yet" in page
    assert reverse("leaderboards:compute") in page
    response = client.post(reverse("leaderboards:compute"))
    assert response.status_code == 302
    page = client.get(reverse("leaderboards:overview")).content.decode()
    assert "Computed at" in page


def test_admin_overview_shows_the_values_at_2_8_and_32_hours_and_when_computed(
    board, admin_user, django_assert_max_num_queries
) -> None:
    client = _client(admin_user)
    with django_assert_max_num_queries(8):
        response = client.get(reverse("leaderboards:overview"))
    assert response.status_code == 200
    page = response.content.decode()
    assert 'id="computed-at"' in page
    assert board["snapshot"].computed_at.strftime("%Y-%m-%d %H:%M:%S") in page
    assert 'id="overall-chart"' in page
    assert "vega-lite-6.5.0.min.js" in page
    for hours in ("2 h", "8 h", "32 h"):
        assert f">{hours}</th>" in page
    assert "Human experts" in page
    assert "claude / claude-3-5-sonnet (triframe)" in page
    # The chart's data is the snapshot's curves, embedded as JSON.
    assert 'id="leaderboard-data"' in page


def test_admin_environment_page_lists_humans_and_agents(board, admin_user, django_assert_max_num_queries) -> None:
    client = _client(admin_user)
    with django_assert_max_num_queries(8):
        response = client.get(reverse("leaderboards:environment", args=[board["chat"].slug]))
    page = response.content.decode()
    assert response.status_code == 200
    assert "ada" in page
    assert "grace" in page
    assert 'id="agents"' in page
    assert "triframe" in page
    assert client.get(reverse("leaderboards:environment", args=["no_such_env"])).status_code == 404


def test_the_page_queries_do_not_grow_with_the_runs(board, admin_user, django_assert_max_num_queries) -> None:
    for raw in (0.6, 0.7, 0.8) * 10:
        ended_run(board["chat"], [(1, raw)], agent=("bulk", "m", ""))
    services.leaderboard_snapshot_create()
    client = _client(admin_user)
    # 11: the overview's list of excluded runs is read live (one query, however many), and each page
    # reads which configurations have a leaderboard (one query each) for its selector.
    with django_assert_max_num_queries(11):
        assert client.get(reverse("leaderboards:overview")).status_code == 200
        assert client.get(reverse("leaderboards:environment", args=[board["chat"].slug])).status_code == 200


def test_an_expert_sees_only_their_own_rows(board, expert, other_expert) -> None:
    client = _client(expert)
    page = client.get(reverse("leaderboards:mine")).content.decode()
    assert 'id="my-results"' in page
    assert board["chat"].slug in page
    assert board["rust"].slug not in page  # only grace has a rust attempt
    assert "imported-human" not in page
    assert client.get(reverse("leaderboards:overview")).status_code == 403
    assert client.get(reverse("leaderboards:environment", args=[board["chat"].slug])).status_code == 403
    exported = client.get(reverse("leaderboards:export", args=["runs", "json"])).json()["rows"]
    assert {row["user_id"] for row in exported} == {expert.pk}
    assert client.get(reverse("leaderboards:export", args=["agents", "json"])).json()["rows"] == []
    assert client.get(reverse("leaderboards:export", args=["curves", "json"])).json()["rows"] == []
    whole = client.get(reverse("leaderboards:export", args=["all", "json"])).json()
    assert whole["admin_view"] is False
    assert {row["participant"] for row in whole["humans"]} == {expert.username}


def test_a_reviewer_and_an_anonymous_visitor_are_refused(board, reviewer) -> None:
    for name in ("leaderboards:overview", "leaderboards:mine"):
        assert _client(reviewer).get(reverse(name)).status_code == 403
        response = Client().get(reverse(name))
        assert response.status_code == 302
        assert response["Location"].startswith("/accounts/login/")
    assert _client(reviewer).get(reverse("leaderboards:export", args=["curves", "csv"])).status_code == 403
    assert _client(reviewer).get("/api/leaderboards/").status_code == 403
    assert Client().get("/api/leaderboards/").status_code in {401, 403}


def test_curves_export_as_csv_with_one_row_per_curve_and_budget(board, admin_user) -> None:
    response = _client(admin_user).get(reverse("leaderboards:export", args=["curves", "csv"]))
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    curves = board["snapshot"].data["curves"]
    assert len(rows) == len(curves) * len(method.BUDGET_HOURS)
    at8 = next(
        r for r in rows if r["environment"] == "overall" and r["group"] == "humans" and r["budget_hours"] == "8.0"
    )
    overall = next(c for c in curves if c["environment"] == "overall" and c["group"] == "humans")
    expected = next(p for p in overall["points"] if p["budget_hours"] == 8.0)
    assert float(at8["value"]) == pytest.approx(expected["value"], abs=1e-12)
    assert float(at8["ci_low"]) <= float(at8["value"]) <= float(at8["ci_high"])
    undefined = [r for r in rows if r["value"] == ""]
    assert undefined
    assert all("n < k" in r["note"] for r in undefined)


@pytest.mark.parametrize("table", ["humans", "agents", "runs"])
def test_every_table_exports_as_csv_and_json_with_the_same_rows(board, admin_user, table: str) -> None:
    client = _client(admin_user)
    as_json = client.get(reverse("leaderboards:export", args=[table, "json"])).json()["rows"]
    as_csv = list(
        csv.DictReader(io.StringIO(client.get(reverse("leaderboards:export", args=[table, "csv"])).content.decode()))
    )
    assert as_json == selectors.snapshot_data(board["snapshot"])[table]
    assert len(as_csv) == len(as_json) > 0
    assert [r["environment"] for r in as_csv] == [r["environment"] for r in as_json]


def test_an_unknown_export_is_not_found(board, admin_user) -> None:
    client = _client(admin_user)
    assert client.get(reverse("leaderboards:export", args=["secrets", "csv"])).status_code == 404
    assert client.get(reverse("leaderboards:export", args=["curves", "xlsx"])).status_code == 404
    assert client.get(reverse("leaderboards:export", args=["all", "csv"])).status_code == 404


def test_the_api_serves_the_numbers_the_pages_show(board, admin_user) -> None:
    client = _client(admin_user)
    whole = client.get("/api/leaderboards/").json()
    assert whole["curves"] == board["snapshot"].data["curves"]
    rows = client.get("/api/leaderboards/curves/", {"environment": board["chat"].slug, "group": AGENT_KEY}).json()[
        "rows"
    ]
    curve = next(c for c in whole["curves"] if c["environment"] == board["chat"].slug and c["group"] == AGENT_KEY)
    assert [r["value"] for r in rows] == [p["value"] for p in curve["points"]]
    assert len(client.get("/api/leaderboards/agents/").json()["rows"]) == len(board["snapshot"].data["agents"])


def test_the_api_names_the_bad_field(board, admin_user) -> None:
    client = _client(admin_user)
    response = client.get("/api/leaderboards/curves/", {"environment": "nope"})
    assert response.status_code == 400
    assert "environment" in response.json()
    response = client.get("/api/leaderboards/runs/", {"group": "agent:nobody||"})
    assert response.status_code == 400
    assert "group" in response.json()
    assert client.get("/api/leaderboards/everything/").status_code == 404


def test_the_api_gives_an_expert_their_own_rows_only(board, expert) -> None:
    body = _client(expert).get("/api/leaderboards/").json()
    assert body["curves"] == []
    assert body["agents"] == []
    assert {r["user_id"] for r in body["runs"]} == {expert.pk}
    assert [g["kind"] for g in body["groups"]] == ["human"]  # not even which agents are compared


def test_the_api_says_when_nothing_was_computed_yet(db, admin_user) -> None:
    response = _client(admin_user).get("/api/leaderboards/")
    assert response.status_code == 404
    assert "computed" in response.json()["detail"]


def test_only_admins_ask_the_api_for_a_recompute(board, expert, admin_user, django_capture_on_commit_callbacks) -> None:
    assert _client(expert).post("/api/leaderboards/recompute/").status_code == 403
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = _client(admin_user).post("/api/leaderboards/recompute/")
    assert response.status_code == 202
    assert len(callbacks) == 1  # the debounced request, sent after commit


def test_navigation_links_admins_to_leaderboards_and_experts_to_their_results(board, admin_user, expert) -> None:
    assert (
        reverse("leaderboards:overview") in _client(admin_user).get(reverse("leaderboards:overview")).content.decode()
    )
    page = _client(expert).get(reverse("leaderboards:mine")).content.decode()
    assert "My results" in page
    assert f'href="{reverse("leaderboards:overview")}"' not in page


def test_the_leaderboard_api_is_in_the_openapi_schema(db, admin_user) -> None:
    paths = _client(admin_user).get("/api/schema/", {"format": "json"}).json()["paths"]
    assert "get" in paths["/api/leaderboards/"]
    assert "get" in paths["/api/leaderboards/{table}/"]
    assert "post" in paths["/api/leaderboards/recompute/"]


def test_the_environment_page_says_how_runs_of_another_length_were_read(db, admin_user) -> None:
    chat = factories.environment("ai_rd_nanogpt_chat_rl")
    for raw in (0.6, 0.7):
        ended_run(chat, [(3, raw)], label=f"h{raw}")
    ended_run(chat, [(8.2, 0.8)], label="overran", hours=8 + 20 / 60)
    ended_run(chat, [(30, 0.9)], label="three-days", hours=72)
    services.leaderboard_snapshot_create()
    page = _client(admin_user).get(reverse("leaderboards:environment", args=[chat.slug])).content.decode()
    assert (
        "2 of the run length; 1 overran within the grace (one run each, scored at their end); "
        "1 longer (read at the run length)"
    ) in page


def test_the_overview_compares_complete_groups_and_shows_incomplete_ones_apart(board, admin_user) -> None:
    page = _client(admin_user).get(reverse("leaderboards:overview")).content.decode()
    # The board's runs are in two of RE-Bench's seven environments: every group is incomplete.
    assert "Incomplete: not comparable with the groups above" in page
    assert 'id="overall-incomplete"' in page
    assert "incomplete, 2 of 7; missing ai_rd_fix_embedding" in page


def test_an_excluded_run_leaves_every_curve_and_table_and_is_listed_with_its_reason(
    db, admin_user, expert, django_capture_on_commit_callbacks
) -> None:
    from trials import services as trials_services
    from trials.models import Attempt

    chat = factories.environment("ai_rd_nanogpt_chat_rl")
    kept = ended_run(chat, [(1, 0.60)], user=expert)
    broken = ended_run(chat, [(1, 0.85)], label="broken-gpu")
    client = _client(admin_user)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = client.post(
            reverse("trials:attempt-exclude", args=[broken.pk]), {"reason": "technical", "note": "GPU fell off the bus"}
        )
    assert response.status_code == 302
    assert callbacks  # the leaderboards are asked to recompute
    broken.refresh_from_db()
    assert (broken.excluded_reason, broken.excluded_note, broken.excluded_by) == (
        "technical",
        "GPU fell off the bus",
        admin_user,
    )

    data = selectors.snapshot_data(services.leaderboard_snapshot_create())
    assert [r["run_id"] for r in data["runs"]] == [kept.pk]
    curve = next(c for c in data["curves"] if c["environment"] == chat.slug)
    assert curve["runs"] == 1
    page = client.get(reverse("leaderboards:overview")).content.decode()
    assert 'id="excluded-runs"' in page
    assert "technical failure — GPU fell off the bus" in page
    attempt_page = client.get(reverse("trials:attempt", args=[broken.pk])).content.decode()
    assert "Count it again" in attempt_page

    trials_services.attempt_include(attempt=broken, by=admin_user)
    assert Attempt.objects.get(pk=broken.pk).excluded_reason == ""
    assert services.leaderboard_snapshot_create().data["curves"][0]["runs"] == 2


def test_excluding_needs_an_admin_and_a_known_reason(db, admin_user, expert) -> None:
    from rebench_site.errors import NotAllowed, ServiceError
    from trials import services as trials_services

    run = ended_run(factories.environment("ai_rd_nanogpt_chat_rl"), [(1, 0.6)], user=expert)
    with pytest.raises(NotAllowed):
        trials_services.attempt_exclude(attempt=run, by=expert, reason="technical")
    with pytest.raises(ServiceError, match="Give a reason"):
        trials_services.attempt_exclude(attempt=run, by=admin_user, reason="because")
    with pytest.raises(ServiceError, match="Say what the other reason is"):
        trials_services.attempt_exclude(attempt=run, by=admin_user, reason="other")
    with pytest.raises(ServiceError, match="not excluded"):
        trials_services.attempt_include(attempt=run, by=admin_user)
    refused = _client(admin_user).post(reverse("trials:attempt-exclude", args=[run.pk]), {"reason": ""}, follow=True)
    assert "Give a reason" in refused.content.decode()
    run.refresh_from_db()
    assert run.excluded_reason == ""
