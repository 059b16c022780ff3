"""REST API routes under /api/."""

from django.urls import URLPattern, URLResolver, path
from rest_framework.routers import SimpleRouter

from environments.api import EnvironmentViewSet
from graders import agent_api
from graders.api import AttemptScoreView, ExpertModelView, InstructionsView, ScoreJobView, ScoreLogView
from graders.imports.api import (
    RunDetailView,
    RunFinishView,
    RunImportDetailView,
    RunImportListView,
    RunListView,
    RunScoreLogView,
)
from graders.leaderboards import api as leaderboard_api
from review import api as review_api
from review.classifier.api import RedTeamScoreView, RedTeamSubstitutionsView
from trials.api import AttemptViewSet, ReservationViewSet, WorkstationViewSet
from trials.api.ssh_keys import SSHKeyViewSet

router = SimpleRouter()
router.register("environments", EnvironmentViewSet, basename="api-environment")
router.register("reservations", ReservationViewSet, basename="api-reservation")
router.register("attempts", AttemptViewSet, basename="api-attempt")
router.register("workstations", WorkstationViewSet, basename="api-workstation")
router.register("ssh-keys", SSHKeyViewSet, basename="api-ssh-key")

urlpatterns: list[URLPattern | URLResolver] = [*router.urls]
# Grading: what the terminal's `task` command calls.
urlpatterns += [
    path("attempts/<int:pk>/score/", AttemptScoreView.as_view(), name="api-attempt-score"),
    # The environment's model for the shell (OPENAI_BASE_URL there ends in …/model/v1).
    path(
        "attempts/<int:pk>/model/v1/chat/completions", ExpertModelView.as_view(), name="api-attempt-model-completions"
    ),
    path("attempts/<int:pk>/score-jobs/<str:job_id>/", ScoreJobView.as_view(), name="api-attempt-score-job"),
    path("attempts/<int:pk>/score-log/", ScoreLogView.as_view(), name="api-attempt-score-log"),
    path("attempts/<int:pk>/instructions/", InstructionsView.as_view(), name="api-attempt-instructions"),
]
# A workstation's agent (workstation.agent.site.HttpSite), with its workstation token.
urlpatterns += [
    path("workstation-agent/jobs/<uuid:job_id>/begin", agent_api.JobBeginView.as_view(), name="api-agent-job-begin"),
    path("workstation-agent/jobs/<uuid:job_id>/beat", agent_api.JobBeatView.as_view(), name="api-agent-job-beat"),
    path("workstation-agent/jobs/<uuid:job_id>/finish", agent_api.JobFinishView.as_view(), name="api-agent-job-finish"),
    path(
        "workstation-agent/attempts/<int:pk>/preparation",
        agent_api.PreparationView.as_view(),
        name="api-agent-preparation",
    ),
    path("workstation-agent/attempts/<int:pk>/prepared", agent_api.PreparedView.as_view(), name="api-agent-prepared"),
    path(
        "workstation-agent/attempts/<int:pk>/preparation-failed",
        agent_api.PreparationFailedView.as_view(),
        name="api-agent-preparation-failed",
    ),
    path(
        "workstation-agent/attempts/<int:pk>/retirement",
        agent_api.RetirementView.as_view(),
        name="api-agent-retirement",
    ),
    path("workstation-agent/heartbeat", agent_api.HeartbeatView.as_view(), name="api-agent-heartbeat"),
]
# Leaderboards: the latest snapshot's tables and curves.
urlpatterns += [
    path("leaderboards/", leaderboard_api.LeaderboardView.as_view(), name="api-leaderboard"),
    path(
        "leaderboards/recompute/",
        leaderboard_api.LeaderboardRecomputeView.as_view(),
        name="api-leaderboard-recompute",
    ),
    path("leaderboards/<str:table>/", leaderboard_api.LeaderboardTableView.as_view(), name="api-leaderboard-table"),
]
# Agent runs from harnesses, and run imports.
urlpatterns += [
    path("runs/", RunListView.as_view(), name="api-runs"),
    path("runs/<int:pk>/", RunDetailView.as_view(), name="api-run"),
    path("runs/<int:pk>/score-log/", RunScoreLogView.as_view(), name="api-run-score-log"),
    path("runs/<int:pk>/finish/", RunFinishView.as_view(), name="api-run-finish"),
    path("run-imports/", RunImportListView.as_view(), name="api-run-imports"),
    path("run-imports/<int:pk>/", RunImportDetailView.as_view(), name="api-run-import"),
]
# The red-team tool's live score and substitutions.
urlpatterns += [
    path("review/red-team/<int:pk>/score/", RedTeamScoreView.as_view(), name="api-red-team-score"),
    path(
        "review/red-team/<int:pk>/substitutions/",
        RedTeamSubstitutionsView.as_view(),
        name="api-red-team-substitutions",
    ),
]
# Review queues: next item and label, for scripts and the benchmark.
urlpatterns += [
    path("review/queues/<int:pk>/next/", review_api.QueueNextView.as_view(), name="api-review-next"),
    path("review/leases/<int:pk>/label/", review_api.LeaseLabelView.as_view(), name="api-review-label"),
]
