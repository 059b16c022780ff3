"""Who may open each of trials' pages: bookings, attempts, the schedule, workstations, recordings."""

from __future__ import annotations

import pytest

from tests.role_matrix import ROLES, Page, assert_page_allows_its_roles

PAGES = [
    Page("trials:my", "get", frozenset({"expert", "other_expert"})),
    Page("trials:book", "get", frozenset({"expert", "other_expert", "admin"})),
    Page("trials:book-environment", "get", frozenset({"expert", "other_expert"}), "environment"),
    Page("trials:reservations", "get", frozenset({"admin"})),
    Page("trials:reservation-end", "post", frozenset({"admin"}), "reservation"),
    Page("trials:attempt", "get", frozenset({"expert", "admin"}), "attempt"),
    Page("trials:attempt-clock", "get", frozenset({"expert", "admin"}), "attempt"),
    Page("trials:attempt-live", "get", frozenset({"expert", "admin"}), "attempt"),
    Page("trials:attempt-pause", "post", frozenset({"expert", "admin"}), "attempt"),
    Page("trials:attempt-resume", "post", frozenset({"expert", "admin"}), "attempt"),
    Page("trials:attempt-preparation-retry", "post", frozenset({"expert", "admin"}), "attempt"),
    Page("trials:attempt-note", "post", frozenset({"expert"}), "attempt"),
    Page("trials:attempt-submit", "post", frozenset({"expert"}), "attempt"),
    Page("trials:attempt-end", "post", frozenset({"admin"}), "attempt"),
    Page("trials:attempt-exclude", "post", frozenset({"admin"}), "attempt"),
    Page("trials:attempt-include", "post", frozenset({"admin"}), "attempt"),
    Page("trials:attempt-technical-pause", "post", frozenset({"admin"}), "attempt"),
    Page("trials:attempt-start", "post", frozenset({"expert"}), "reservation"),
    Page("trials:reservation-cancel", "post", frozenset({"expert", "admin"}), "reservation"),
    Page("trials:attempt-list", "get", frozenset({"admin"})),
    Page("trials:schedule", "get", frozenset({"admin"})),
    Page("trials:workstations", "get", frozenset({"admin"})),
    Page("trials:workstation", "get", frozenset({"admin"}), "workstation"),
    Page("trials:gpu-problem", "post", frozenset({"admin"}), "gpu"),
    Page("trials:workstation-setup", "get", frozenset({"admin"}), "workstation"),
    Page("trials:workstation-agent-token", "post", frozenset({"admin"}), "workstation"),
    # Terminal recordings: admins only, not even the attempt's own expert.
    Page("trials:terminal-replay", "get", frozenset({"admin"}), "attempt"),
    Page("trials:terminal-cast", "get", frozenset({"admin"}), "attempt"),
    Page("trials:attempt-message", "post", frozenset({"admin"}), "attempt"),
    # SSH access: an expert's own keys, and a key for their own attempt.
    Page("trials:ssh-keys", "get", frozenset({"expert", "other_expert"})),
    Page("trials:ssh-key-delete", "post", frozenset({"expert"}), "ssh_key"),
    Page("trials:attempt-ssh-key", "post", frozenset({"expert"}), "attempt"),
    # Files: the expert uploads (nothing chosen: a 400 naming `file`); the expert and admins download (the
    # whole workspace; a 400 where this machine can't run the sandbox).
    Page("trials:attempt-files-upload", "post", frozenset({"expert"}), "attempt", frozenset({400})),
    Page("trials:attempt-files-download", "get", frozenset({"expert", "admin"}), "attempt", frozenset({400})),
]


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_page_allows_its_roles_and_refuses_the_others(world, page: Page, role: str) -> None:
    assert_page_allows_its_roles(world, page, role)
