"""REST API routes under /api/."""

from django.urls import URLPattern, URLResolver
from rest_framework.routers import SimpleRouter

from environments.api import EnvironmentViewSet
from trials.api import AttemptViewSet, ReservationViewSet, WorkstationViewSet

router = SimpleRouter()
router.register("environments", EnvironmentViewSet, basename="api-environment")
router.register("reservations", ReservationViewSet, basename="api-reservation")
router.register("attempts", AttemptViewSet, basename="api-attempt")
router.register("workstations", WorkstationViewSet, basename="api-workstation")

urlpatterns: list[URLPattern | URLResolver] = [*router.urls]
