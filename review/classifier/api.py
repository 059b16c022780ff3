"""REST endpoints of the red-team tool: the live score with per-token saliency, and substitutions for a token."""

from __future__ import annotations

from typing import Any

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from rebench_site.errors import ServiceError
from rebench_site.roles import ADMIN, REVIEWER, AuthenticatedRequest, HasRole
from review.classifier import selectors
from review.classifier.models import ClassifierVersion, RedTeamAttempt
from review.services import completion_check_text


class StrictText(serializers.CharField):
    """Text only: DRF's CharField would turn 5 or true into "5" and "True" and score that."""

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class ScoreInput(serializers.Serializer[None]):
    text = StrictText(allow_blank=True, trim_whitespace=False)


class SubstitutionsInput(ScoreInput):
    token_index = serializers.IntegerField(min_value=0)
    limit = serializers.IntegerField(min_value=1, max_value=50, default=10)


def _valid(serializer_class: type[serializers.Serializer[None]], data: Any) -> dict[str, Any]:
    serializer = serializer_class(data=data)
    if not serializer.is_valid():
        field, errors = next(iter(serializer.errors.items()))
        raise ServiceError(str(errors[0]), field=field)
    return dict(serializer.validated_data)


def _scoring_version() -> ClassifierVersion:
    version = selectors.active_version()
    if version is None:
        raise ServiceError("no classifier version is active yet", field="version")
    return version


def _attempt(request: AuthenticatedRequest, pk: int) -> RedTeamAttempt:
    return get_object_or_404(RedTeamAttempt, pk=pk, reviewer=request.user)


class RedTeamScoreView(APIView):
    """POST {text}: the active classifier's score of the attempt's prompt with `text`, and per-token saliency."""

    permission_classes = [HasRole.of(REVIEWER, ADMIN)]

    @extend_schema(request=ScoreInput, responses=dict)
    def post(self, request: AuthenticatedRequest, pk: int) -> Response:
        from review.classifier import model, runtime  # torch: loaded on first use, not with the URLconf

        attempt = _attempt(request, pk)
        text = completion_check_text(_valid(ScoreInput, request.data)["text"])
        version = _scoring_version()
        explanation = model.explain(runtime.encoder_for(version), runtime.head_for(version), attempt.prompt, text)
        threshold = version.threshold
        return Response(
            {
                "version": version.pk,
                "score": explanation.score,
                "threshold": threshold,
                "passes": None if threshold is None else explanation.score < threshold,
                "truncated": explanation.truncated,
                "tokens": [
                    {
                        "index": t.index,
                        "token": t.token,
                        "start": t.start,
                        "end": t.end,
                        "saliency": t.saliency,
                        "gradient_norm": t.gradient_norm,
                    }
                    for t in explanation.tokens
                ],
            }
        )


class RedTeamSubstitutionsView(APIView):
    """POST {text, token_index}: replacements for that completion token, lowest exact score first."""

    permission_classes = [HasRole.of(REVIEWER, ADMIN)]

    @extend_schema(request=SubstitutionsInput, responses=dict)
    def post(self, request: AuthenticatedRequest, pk: int) -> Response:
        from review.classifier import model, runtime  # torch: loaded on first use, not with the URLconf

        attempt = _attempt(request, pk)
        data = _valid(SubstitutionsInput, request.data)
        text = completion_check_text(data["text"])
        version = _scoring_version()
        try:
            subs = model.substitutions(
                runtime.encoder_for(version),
                runtime.head_for(version),
                attempt.prompt,
                text,
                data["token_index"],
                limit=data["limit"],
            )
        except IndexError as exc:
            raise ServiceError(str(exc).removeprefix("token_index "), field="token_index") from None
        return Response(
            {
                "token_index": data["token_index"],
                "substitutions": [
                    {"token": s.token, "text": s.text, "score": s.score, "estimated_score": s.estimated_score}
                    for s in subs
                ],
            }
        )
