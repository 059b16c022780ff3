"""What every step shares: the array types, the budget grid, the CI level and the slack on B ≤ L."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

HOUR = 3600.0
# Total budgets from 30 min to 64 h, four per doubling; 2, 8 and 32 h are on the grid exactly.
BUDGET_HOURS: tuple[float, ...] = tuple(2.0 ** (j / 4) for j in range(-4, 25))
HIGHLIGHT_HOURS: tuple[float, ...] = (2.0, 8.0, 32.0)
HUMANS = "humans"
CI_LEVEL = 0.95
# B ≤ L and k = ⌊B/L⌋ are decided with this relative slack, so 16 h / 8 h is 2 whatever the float rounding.
_SLACK = 1e-9
