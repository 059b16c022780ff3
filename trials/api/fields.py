"""Fields of the trials API's input: aware date-times, a workstation by id or name, a visible reservation."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db.models import QuerySet
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.relations import PKOnlyObject

from rebench_site.params import MAX_ID, id_param
from trials.api._shared import reservations_visible_to
from trials.models import Reservation, Workstation

# The years a reservation, pause or run may name.
YEARS = (2000, 2200)


# --- fields ------------------------------------------------------------------------------------


class AwareDateTimeField(serializers.DateTimeField):
    """An ISO-8601 date-time with its offset; DRF would read a naive one as server time, silently."""

    default_error_messages = {
        "naive": "Give the time zone too, e.g. 2030-01-31T09:00:00+01:00 or 2030-01-31T08:00Z.",
        "years": f"Give a time between the years {YEARS[0]} and {YEARS[1]}.",
    }

    def to_internal_value(self, value: Any) -> datetime:
        if isinstance(value, datetime) and timezone.is_naive(value):
            self.fail("naive")
        if isinstance(value, str):
            try:
                parsed = parse_datetime(value)
            except ValueError:
                parsed = None  # well-formed but impossible (month 13): the parent's message says what to send
            if parsed is not None and timezone.is_naive(parsed):
                self.fail("naive")
        parsed_value = super().to_internal_value(value)
        # Times near datetime's ends overflow the moment a length is added to them (a slot's end,
        # a deadline): refused here, where the field can be named.
        if not YEARS[0] <= parsed_value.year <= YEARS[1]:
            self.fail("years")
        return parsed_value


@extend_schema_field(
    {"oneOf": [{"type": "integer"}, {"type": "string"}], "description": "Workstation id, or its name."}
)
class WorkstationRefField(serializers.RelatedField[Workstation, Workstation, int]):
    """A workstation by id (a number) or by name (a string); scripts know names, forms know ids."""

    default_error_messages = {
        "does_not_exist": "No workstation {value!r}.",
        "incorrect_type": "Give a workstation id (a number) or name (a string).",
    }

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("queryset", Workstation.objects.all())
        super().__init__(**kwargs)

    def get_queryset(self) -> QuerySet[Workstation]:
        queryset = super().get_queryset()
        assert queryset is not None  # __init__ gives one
        return queryset

    def to_internal_value(self, data: Any) -> Workstation:
        # bool is an int in Python; `true` is not a workstation id.
        if isinstance(data, bool) or not isinstance(data, int | str):
            self.fail("incorrect_type")
        queryset = self.get_queryset()
        found = queryset.filter(name=data).first() if isinstance(data, str) else None
        pk = data if isinstance(data, int) else id_param(data)
        if found is None and pk is not None and 1 <= pk <= MAX_ID:
            found = queryset.filter(pk=pk).first()
        if found is None:
            self.fail("does_not_exist", value=data)
        return found

    def to_representation(self, value: Workstation | PKOnlyObject) -> int:
        return value.pk


class VisibleReservationField(serializers.PrimaryKeyRelatedField[Reservation]):
    """A reservation id among those the requesting user may see: others' ids look unknown."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("queryset", Reservation.objects.all())
        super().__init__(**kwargs)

    def get_queryset(self) -> QuerySet[Reservation]:
        request = self.context.get("request")
        if request is None:
            return Reservation.objects.none()
        return reservations_visible_to(request.user)
