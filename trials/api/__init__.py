"""REST API for trials: reservations, attempts on the server's clock, and (for admins) workstations.

One module per subject; callers import this package (`from trials.api import AttemptViewSet`) and find
every endpoint, serializer and field here. A test that replaces a name replaces it in the module that
looks it up.
"""

from __future__ import annotations

from trials.api._shared import (
    ADMINS,
    EXPERTS_AND_ADMINS,
    ClockContextMixin,
    attempts_visible_to,
    reservations_visible_to,
)
from trials.api.attempts import AttemptViewSet
from trials.api.fields import YEARS, AwareDateTimeField, VisibleReservationField, WorkstationRefField
from trials.api.reservations import ReservationViewSet
from trials.api.serializers import (
    AttemptAddPauseSerializer,
    AttemptPauseSerializer,
    AttemptSerializer,
    AttemptStartSerializer,
    NoteCreateSerializer,
    NoteSerializer,
    PauseSerializer,
    ReservationCreateSerializer,
    ReservationFilterSerializer,
    ReservationSerializer,
    UserRefSerializer,
    WorkstationCreateSerializer,
    WorkstationRefSerializer,
    WorkstationSerializer,
    WorkstationUpdateSerializer,
)
from trials.api.workstations import WorkstationViewSet

__all__ = [
    "ADMINS",
    "EXPERTS_AND_ADMINS",
    "YEARS",
    "AttemptAddPauseSerializer",
    "AttemptPauseSerializer",
    "AttemptSerializer",
    "AttemptStartSerializer",
    "AttemptViewSet",
    "AwareDateTimeField",
    "ClockContextMixin",
    "NoteCreateSerializer",
    "NoteSerializer",
    "PauseSerializer",
    "ReservationCreateSerializer",
    "ReservationFilterSerializer",
    "ReservationSerializer",
    "ReservationViewSet",
    "UserRefSerializer",
    "VisibleReservationField",
    "WorkstationCreateSerializer",
    "WorkstationRefField",
    "WorkstationRefSerializer",
    "WorkstationSerializer",
    "WorkstationUpdateSerializer",
    "WorkstationViewSet",
    "attempts_visible_to",
    "reservations_visible_to",
]
