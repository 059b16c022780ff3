"""The dependency contract (rebench_site.layers): no import in the tree points the wrong way, and the
check catches each kind of back-import the tree once had."""

from __future__ import annotations

from pathlib import Path

import pytest

from rebench_site.layers import violations, violations_in

ROOT = Path(__file__).resolve().parents[2]


def test_no_import_in_the_project_points_the_wrong_way() -> None:
    found = violations(ROOT)
    assert not found, "imports that point the wrong way:\n" + "\n".join(map(str, found))


# Each import below was in the tree before the contract; each must be refused if it came back.
BACK_IMPORTS = [
    ("trials.services.attempts", "def f():\n    from graders.services import workspace_prepare_queue\n"),
    ("trials.services.deadlines", "from graders.services import queue_final_scoring\n"),
    ("trials.services.attempts", "from graders.leaderboards.services import leaderboard_request_recompute\n"),
    ("trials.views", "from graders.selectors import attempt_scores as grading_context\n"),
    ("trials.services_demo", "from review.classifier import services\n"),
    ("trials.services_demo", "from graders import models\n"),
    ("review.classifier.views", "from graders.leaderboards.selectors import leaderboard_latest\n"),
    ("environments.services", "import trials.models\n"),
    ("workstation.sandbox.keeper", "from environments.packages import package_for\n"),
    ("workstation.sandbox.keeper", "from workstation.agent import work\n"),
    ("workstation.agent.work", "from trials.models import Attempt\n"),
    ("rebench_site.roles", "from trials.models import Attempt\n"),
    ("audit.services", "from review import models\n"),
    ("graders.services", "import importlib\nimportlib.import_module('review.services')\n"),
    ("graders.services", "from review.classifier.models import ClassifierVersion\n"),
]


@pytest.mark.parametrize(("module", "source"), BACK_IMPORTS)
def test_a_back_import_is_refused_wherever_it_sits(module: str, source: str) -> None:
    found = violations_in(source, module=module)
    assert len(found) == 1, found
    assert found[0].importer == module


def test_a_relative_import_is_read_as_the_module_it_names() -> None:
    assert violations_in("from ...graders import selectors\n", module="trials.services.attempts")
    assert not violations_in("from . import booking\n", module="trials.services", is_package=True)


ALLOWED = [
    ("graders.services", "from trials.models import Attempt\n"),
    ("trials.services.attempts", "from environments.packages import package_for\n"),
    ("environments.measure", "from workstation import scoring\n"),
    ("workstation.agent.work", "from environments import packages\n"),
    ("trials.tasks", "from workstation.agent.tasks import workstation_heartbeat\n"),
    ("review.services.labels", "from rebench_site import roles\nfrom rebench_site.errors import ServiceError\n"),
    ("review.services.labels", "from audit.services import audit_record\n"),
    ("rebench_site.urls", "from review import urls\nfrom graders.leaderboards import views\n"),
    ("workstation.capabilities", "import site\nimport os\n"),
]


@pytest.mark.parametrize(("module", "source"), ALLOWED)
def test_an_import_down_the_layers_or_of_the_kernel_passes(module: str, source: str) -> None:
    assert violations_in(source, module=module) == []
