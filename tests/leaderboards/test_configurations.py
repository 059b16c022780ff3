"""Leaderboards per configuration, from the database: runs of mixed lengths in two environments and two
configurations, every value worked out by hand; and the active configuration changes no number."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from environments.models import EnvironmentConfiguration
from environments.services import environment_configurations_sync, environment_sync_registry
from graders.leaderboards import method, selectors, services
from graders.models import AttemptScore
from graders.services import attempt_score_update
from tests import factories
from tests.leaderboards.leaderboard_data import ended_run

pytestmark = pytest.mark.django_db
HOUR_13 = 2 ** (15 / 4)  # 13.45 h: the grid budget between 8 and 16 h, where k = ⌊13.45/8⌋ = 1


def _points(data: dict[str, Any], environment: str, group: str = method.HUMANS) -> dict[float, float | None]:
    curve = next(c for c in data["curves"] if c["environment"] == environment and c["group"] == group)
    return {p["budget_hours"]: p["value"] for p in curve["points"]}


@pytest.fixture
def two_environments(settings):
    settings.ENVIRONMENT_CONFIGURATION = "small"  # the site runs small: imports and runs at full must not care
    chat = factories.environment("ai_rd_nanogpt_chat_rl")
    embedding = factories.environment("ai_rd_fix_embedding")
    # chat RL full: 0.54 → 0.85, max. n(x) = (x − 0.54)/0.31.
    # L = 8 h (two runs of it); 4 h is shorter; 8 h 20 min overran within the 60-minute grace; 3 days is longer.
    ended_run(chat, [(1, 0.60), (3.5, 0.70)], label="four-hours", hours=4)  # s_r = n(0.70) = 0.516129
    ended_run(chat, [(2, 0.65), (7, 0.80)], label="eight-a")  # s_r = n(0.80) = 0.838710
    ended_run(chat, [(1.5, 0.58), (6, 0.62)], label="eight-b")  # s_r = n(0.62) = 0.258065
    ended_run(chat, [(8.2, 0.85)], label="overran", hours=8 + 20 / 60)  # s_r at its end = n(0.85) = 1
    ended_run(chat, [(5, 0.62), (30, 0.90)], label="three-days", hours=72)  # read at 8 h: n(0.62) = 0.258065
    # chat RL small: 0.5 → 0.875. n(x) = (x − 0.5)/0.375. Full constants would give other numbers.
    ended_run(chat, [(1, 0.65)], label="small-a", configuration="small")  # n = 0.4
    ended_run(chat, [(4, 0.80)], label="small-b", configuration="small")  # n = 0.8
    # fix_embedding full: 2.196224077 → 0.262364264, min (lower is better). n(x) = (2.196224077 − x)/1.933859813.
    ended_run(embedding, [(1, 1.5), (6, 0.9)], label="emb-a")  # 2 h: n(1.5) = 0.360018; 8 h: n(0.9) = 0.670278
    ended_run(embedding, [(3, 1.2)], label="emb-b")  # 2 h: 0; 8 h: n(1.2) = 0.515148
    ended_run(embedding, [(2, 1.0)], label="emb-c", hours=4)  # 2 h and beyond: n(1.0) = 0.618568
    return chat, embedding


def test_runs_of_mixed_lengths_in_two_environments_and_two_configurations_match_hand_computed_values(
    two_environments,
) -> None:
    services.leaderboard_snapshot_create()
    full = selectors.leaderboard_latest("full").data
    small = selectors.leaderboard_latest("small").data
    assert (full["configuration"], small["configuration"]) == ("full", "small")

    chat = _points(full, "ai_rd_nanogpt_chat_rl")
    # 2 h (k = 1, within a run): each run's score at 2 h: n(0.60), n(0.65), n(0.58), 0, 0.
    assert chat[2.0] == pytest.approx((0.193548 + 0.354839 + 0.129032) / 5, abs=1e-6)
    # 8 h = L: each run's score at 8 h; the overrun's only entry is at 8.2 h, so it has 0 yet.
    assert chat[8.0] == pytest.approx((0.516129 + 0.838710 + 0.258065 + 0 + 0.258065) / 5, abs=1e-6)
    # 13.45 h (k = 1, beyond L): one whole run each, s_r.
    assert chat[HOUR_13] == pytest.approx((0.516129 + 0.838710 + 0.258065 + 1 + 0.258065) / 5, abs=1e-6)
    # 16 h (k = 2 of 5): sorted s = .258, .258, .516, .839, 1; P(max = s_i) = (i − 1)/10.
    assert chat[16.0] == pytest.approx(0.1 * 0.258065 + 0.2 * 0.516129 + 0.3 * 0.838710 + 0.4 * 1, abs=1e-6)
    # 32 h (k = 4 of 5): P(max = s_4) = C(3,3)/C(5,4) = 1/5, P(max = s_5) = 4/5.
    assert chat[32.0] == pytest.approx(0.2 * 0.838710 + 0.8 * 1, abs=1e-6)
    [curve] = [c for c in full["curves"] if c["environment"] == "ai_rd_nanogpt_chat_rl"]
    assert curve["runs"] == 5  # the small runs are not on the full curve
    assert curve["run_counts"] == {"at_length": 2, "shorter": 1, "overran": 1, "truncated": 1}

    embedding = _points(full, "ai_rd_fix_embedding")
    assert embedding[2.0] == pytest.approx((0.360018 + 0 + 0.618568) / 3, abs=1e-6)
    assert embedding[8.0] == pytest.approx((0.670278 + 0.515148 + 0.618568) / 3, abs=1e-6)
    assert embedding[HOUR_13] == pytest.approx((0.670278 + 0.515148 + 0.618568) / 3, abs=1e-6)
    # k = 2 of 3: P(max = s_2) = 1/3, P(max = s_3) = 2/3 over sorted .515, .619, .670.
    assert embedding[16.0] == pytest.approx(0.618568 / 3 + 2 * 0.670278 / 3, abs=1e-6)
    assert embedding[32.0] is None  # 4 runs needed, 3 there

    chat_small = _points(small, "ai_rd_nanogpt_chat_rl")
    assert chat_small[2.0] == pytest.approx((0.4 + 0) / 2)
    assert chat_small[8.0] == pytest.approx((0.4 + 0.8) / 2)
    assert chat_small[16.0] == pytest.approx(0.8)  # best of both
    assert "ai_rd_fix_embedding" not in {c["environment"] for c in small["curves"]}


def test_switching_the_active_configuration_changes_no_stored_or_shown_number(two_environments, settings) -> None:
    from trials.models import Attempt

    for attempt in Attempt.objects.all():
        attempt_score_update(attempt=attempt, is_final=True)
    before_scores = dict(AttemptScore.objects.values_list("attempt_id", "normalised"))
    services.leaderboard_snapshot_create()
    before = {name: selectors.leaderboard_latest(name).data["curves"] for name in ("full", "small")}
    admin = factories.admin()
    client = Client()
    client.force_login(admin)
    page_before = client.get(reverse("leaderboards:environment", args=["ai_rd_nanogpt_chat_rl"])).content

    settings.ENVIRONMENT_CONFIGURATION = "full"
    environment_sync_registry()
    for attempt in Attempt.objects.all():
        attempt_score_update(attempt=attempt, is_final=True)
    services.leaderboard_snapshot_create()

    assert dict(AttemptScore.objects.values_list("attempt_id", "normalised")) == before_scores
    assert {name: selectors.leaderboard_latest(name).data["curves"] for name in ("full", "small")} == before
    page_after = client.get(reverse("leaderboards:environment", args=["ai_rd_nanogpt_chat_rl"])).content
    table = page_before.split(b'id="environment-values"')[1].split(b"</table>")[0]
    assert table == page_after.split(b'id="environment-values"')[1].split(b"</table>")[0]


def test_re_measured_constants_are_a_new_version_and_old_runs_keep_theirs(two_environments, monkeypatch) -> None:
    from environments import services as environment_services
    from trials.models import Attempt

    chat, _ = two_environments
    old = Attempt.objects.get(participant_label="small-a")
    attempt_score_update(attempt=old, is_final=True)
    assert old.configuration.label == "small v1"
    assert AttemptScore.objects.get(attempt=old).normalised == pytest.approx(0.4)

    declared = environment_services.declared_configurations(chat)
    remeasured = {**declared, "small": environment_services.DeclaredConfiguration(0.55, 0.9, "measured again")}
    monkeypatch.setattr(environment_services, "declared_configurations", lambda environment: remeasured)
    environment_configurations_sync(environment=chat)
    assert environment_configurations_sync(environment=chat)[0].version in (1, 2)  # idempotent: no third version

    versions = list(
        EnvironmentConfiguration.objects.filter(environment=chat, name="small").values_list("version", "starting_score")
    )
    assert versions == [(2, 0.55), (1, 0.5)]
    attempt_score_update(attempt=old, is_final=True)
    old.refresh_from_db()
    assert old.configuration.version == 1
    assert AttemptScore.objects.get(attempt=old).normalised == pytest.approx(0.4)
    new = ended_run(chat, [(1, 0.65)], label="small-c", configuration="small")
    assert new.configuration.version == 2
    assert new.scale.normalise(0.65) == pytest.approx((0.65 - 0.55) / 0.35)


def test_the_page_says_which_configuration_it_shows_and_offers_the_others(two_environments) -> None:
    services.leaderboard_snapshot_create()
    client = Client()
    client.force_login(factories.admin())

    default = client.get(reverse("leaderboards:overview")).content.decode()
    assert "RE-Bench scale" in default
    assert '<option value="small"' in default
    assert "full v1" in default  # each environment's configuration version and constants
    small = client.get(reverse("leaderboards:overview") + "?configuration=small").content.decode()
    assert "Runs\n  scored at the <strong>small</strong> configuration" in small
    bad = client.get(reverse("leaderboards:overview") + "?configuration=../etc")
    assert bad.status_code == 400
    assert "Name a configuration" in bad.content.decode()
    api = client.get("/api/leaderboards/?configuration=small").json()
    assert api["configuration"] == "small"
    refused = client.get("/api/leaderboards/?configuration=no%20such")
    assert refused.status_code == 400
    assert "configuration" in refused.json()
