"""What several of review's reads share."""

from __future__ import annotations

from review.models import LabelValue

# injurious, safe, unsure: the column order of every table below and of review.agreement's.
CATEGORIES = list(LabelValue.values)
