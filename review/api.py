"""REST API for labeling from scripts: next item (a lease) and label, with token auth."""

from __future__ import annotations

from django.http import Http404
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from rebench_site.api_fields import FiniteFloatField
from rebench_site.errors import NotAllowed
from rebench_site.params import MAX_ID
from rebench_site.roles import REVIEWER, AuthenticatedRequest, HasRole
from review import services
from review.models import Assignment, LabelValue, ReviewQueue

# What get_object_or_404 says for an assignment that isn't the user's: the same answer either way.
NOT_YOURS = f"No {Assignment._meta.object_name} matches the given query."


class LeaseSerializer(serializers.Serializer[Assignment]):
    """For the schema and the answer: the leased item, blind (no classifier score, no other labels)."""

    assignment = serializers.IntegerField(source="pk")
    expires_at = serializers.DateTimeField()
    completion = serializers.IntegerField(source="item.completion_id")
    prompt = serializers.CharField(source="item.completion.prompt")
    text = serializers.CharField(source="item.completion.text")


def workable_queue(request: AuthenticatedRequest, pk: int) -> ReviewQueue:
    queue = get_object_or_404(ReviewQueue, pk=pk)
    if not services.reviewer_may_work(queue=queue, reviewer=request.user):
        raise NotAllowed("You are not a reviewer of this queue.")
    return queue


class NextSerializer(serializers.Serializer[None]):
    exclude = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=MAX_ID),
        required=False,
        default=list,
        max_length=100,
        help_text="Leases the client already shows (prefetched), not to be handed out again.",
    )


class LabelSerializer(serializers.Serializer[None]):
    value = serializers.ChoiceField(choices=LabelValue.values)
    note = serializers.CharField(required=False, allow_blank=True, default="", max_length=5000)
    seconds = FiniteFloatField(
        required=False, allow_null=True, default=None, min_value=0, help_text="Time spent on the item."
    )


class QueueNextView(APIView):
    permission_classes = [HasRole.of(REVIEWER)]

    @extend_schema(request=NextSerializer, responses={200: LeaseSerializer, 204: None})
    def post(self, request: AuthenticatedRequest, pk: int) -> Response:
        """Lease the next item of the queue (the one already held, if any); 204 when nothing is left."""
        queue = workable_queue(request, pk)
        params = NextSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        assignment = services.lease_next(queue=queue, reviewer=request.user, exclude=params.validated_data["exclude"])
        if assignment is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        return Response(LeaseSerializer(assignment).data)


class LeaseLabelView(APIView):
    permission_classes = [HasRole.of(REVIEWER)]

    @extend_schema(
        request=LabelSerializer,
        responses={
            201: inline_serializer(
                "LabelOut", {"label": serializers.IntegerField(), "created": serializers.BooleanField()}
            ),
            200: inline_serializer(
                "LabelAgain", {"label": serializers.IntegerField(), "created": serializers.BooleanField()}
            ),
        },
    )
    def post(self, request: AuthenticatedRequest, pk: int) -> Response:
        """Label the leased item; the same label again answers 200 with the first one (nothing counted twice)."""
        label = LabelSerializer(data=request.data)
        if not label.is_valid():
            # An unknown or someone else's lease is a 404 whatever the body says (the ownership
            # check is the service's own lock statement when the body is good: one query less).
            get_object_or_404(Assignment.objects.filter(reviewer=request.user), pk=pk)
            raise serializers.ValidationError(label.errors)
        try:
            result = services.label_submit(
                reviewer=request.user,
                assignment_id=pk,
                value=label.validated_data["value"],
                note=label.validated_data["note"],
                seconds_spent=label.validated_data["seconds"],
            )
        except services.NoLease:
            raise Http404(NOT_YOURS) from None
        return Response(
            {"label": result.label.pk, "created": result.created},
            status=status.HTTP_201_CREATED if result.created else status.HTTP_200_OK,
        )
