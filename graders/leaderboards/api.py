"""REST API for leaderboards: the latest snapshot's tables and curves (the numbers the pages show), and a recompute."""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from graders.leaderboards import selectors, services
from rebench_site import roles
from rebench_site.errors import ServiceError
from rebench_site.roles import AuthenticatedRequest

# Both refuse anonymous users: the views behind them take a roles.AuthenticatedRequest.
EXPERTS_AND_ADMINS: list[type[BasePermission]] = [IsAuthenticated, roles.HasRole.of(roles.EXPERT, roles.ADMIN)]
ADMINS: list[type[BasePermission]] = [IsAuthenticated, roles.HasRole.of(roles.ADMIN)]


CONFIGURATION_PARAMETER = OpenApiParameter(
    "configuration",
    str,
    description="Which configuration's leaderboard: full (RE-Bench's scale, the default), small or a custom name.",
)


def _visible(request: AuthenticatedRequest, *, with_runs: bool = True) -> tuple[Any, dict[str, Any]]:
    configuration = selectors.configuration_param(request.query_params.get("configuration") or selectors.FULL)
    snapshot = selectors.leaderboard_latest(configuration, with_runs=with_runs)
    if snapshot is None:
        raise NotFound(f"No leaderboard computed yet for configuration {configuration!r}.")
    return snapshot, selectors.snapshot_visible_to(snapshot, request.user)


class LeaderboardView(APIView):
    permission_classes = EXPERTS_AND_ADMINS

    @extend_schema(
        operation_id="leaderboard_retrieve", parameters=[CONFIGURATION_PARAMETER], responses={200: OpenApiTypes.OBJECT}
    )
    def get(self, request: AuthenticatedRequest) -> Response:
        """The whole latest snapshot: environments, groups, curves, humans, agents, runs (an expert: own rows only)."""
        snapshot, data = _visible(request)
        return Response({"computed_at": snapshot.computed_at, "runs_in": snapshot.runs, **data})


class LeaderboardTableView(APIView):
    permission_classes = EXPERTS_AND_ADMINS

    @extend_schema(
        operation_id="leaderboard_table_retrieve",
        parameters=[
            CONFIGURATION_PARAMETER,
            OpenApiParameter("environment", str, description="An environment slug, or `overall` for curves."),
            OpenApiParameter("group", str, description="A group key: `humans` or `agent:<name>|<model>|<scaffold>`."),
        ],
        responses={
            200: inline_serializer(
                "LeaderboardTable",
                {
                    "computed_at": serializers.DateTimeField(),
                    "rows": serializers.ListField(child=serializers.DictField()),
                },
            )
        },
    )
    def get(self, request: AuthenticatedRequest, table: str) -> Response:
        """One table as flat rows (curves: one row per curve and budget), the same rows as the CSV export."""
        if table not in selectors.TABLES:
            raise NotFound(f"No table {table!r}; the tables are {', '.join(selectors.TABLES)}.")
        snapshot, data = _visible(request, with_runs=table == "runs")
        rows = selectors.table_rows(data, table)
        environment = request.query_params.get("environment")
        if environment is not None:
            known = {e["slug"] for e in data.get("environments", [])} | {"overall"}
            if environment not in known:
                raise ServiceError(f"No environment {environment!r} on the leaderboard.", field="environment")
            rows = [r for r in rows if r.get("environment") == environment]
        group = request.query_params.get("group")
        if group is not None:
            if group not in {g["key"] for g in data.get("groups", [])}:
                raise ServiceError(f"No group {group!r} on the leaderboard.", field="group")
            rows = [r for r in rows if r.get("group") == group]
        return Response({"computed_at": snapshot.computed_at, "rows": rows})


class LeaderboardRecomputeView(APIView):
    permission_classes = ADMINS

    @extend_schema(
        request=None, responses={202: inline_serializer("RecomputeQueued", {"status": serializers.CharField()})}
    )
    def post(self, request: AuthenticatedRequest) -> Response:
        """Ask for a recompute through the same debounce as score changes."""
        services.leaderboard_request_recompute()
        return Response({"status": "queued"}, status=status.HTTP_202_ACCEPTED)
