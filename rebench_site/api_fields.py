"""Serializer fields shared by the apps' APIs."""

from __future__ import annotations

import math
from typing import Any

from rest_framework import serializers


class FiniteFloatField(serializers.FloatField):
    """A float that is a number: DRF's FloatField takes "nan" and "inf", which pass min/max checks
    (every comparison with NaN is false) and then break clocks, sums and leaderboards."""

    default_error_messages = {"not_finite": "Must be a finite number."}

    def to_internal_value(self, data: Any) -> float:
        value = super().to_internal_value(data)
        if not math.isfinite(value):
            self.fail("not_finite")
        return value
