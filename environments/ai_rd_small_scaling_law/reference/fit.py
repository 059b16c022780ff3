"""Reference: experiments within the limit of one, a compute-optimal fit, an extrapolation to the budget.

At three compute levels (the limit of one experiment, a half and a quarter of it) train each width
that gets at least 20 iterations there; at each level take the best width (a parabola through the
best loss and its neighbours, in log width) and its loss. Fit the best width and the best loss as
power laws of compute (a line in log-log space for the width), extrapolate both to the final run's budget,
and answer with that width, the iterations the budget allows it, and the extrapolated loss (a
power law with a floor, E + A · C^-alpha, when one fits; else the line).
"""

import json
import math

import numpy as np
import train
from flops import BUDGET_FLOPS, EXPERIMENT_LIMIT_FLOPS, flops

WIDTHS = (4, 6, 8, 12, 16, 24, 32)
LEVELS = (EXPERIMENT_LIMIT_FLOPS / 4, EXPERIMENT_LIMIT_FLOPS / 2, EXPERIMENT_LIMIT_FLOPS)


def best_at(compute):
    runs = []
    for width in WIDTHS:
        iters = int(compute // flops(width, 1))
        if iters >= 20:
            result = train.run(
                width, iters, train_path=train.HERE / "data" / "train.bin", eval_path=train.HERE / "data" / "val.bin"
            )
            print(json.dumps(result), flush=True)
            runs.append((math.log(width), result["val_loss"]))
    i = min(range(len(runs)), key=lambda k: runs[k][1])
    window = runs[max(0, i - 1) : i + 2]
    if len(window) == 3:
        a, b, c = np.polyfit([x for x, _ in window], [y for _, y in window], 2)
        if a > 0 and window[0][0] <= -b / (2 * a) <= window[-1][0]:
            x = -b / (2 * a)
            return x, a * x * x + b * x + c
    return runs[i]


points = [(math.log(c), *best_at(c)) for c in LEVELS]
log_c = [p[0] for p in points]
slope, intercept = np.polyfit(log_c, [p[1] for p in points], 1)
width = max(4, round(math.exp(intercept + slope * math.log(BUDGET_FLOPS))))


def power_law(log_cs, losses):
    """L(C) = E + A · C^-alpha, E ≥ 0: the best alpha on a grid, E and A by least squares."""
    best = None
    for alpha in np.arange(0.02, 1.0, 0.02):
        x = np.exp(-alpha * np.array(log_cs))
        (a, e), *_ = np.linalg.lstsq(np.stack([x, np.ones_like(x)], 1), np.array(losses), rcond=None)
        if e < 0 or a < 0:
            continue
        residual = float(((a * x + e - np.array(losses)) ** 2).sum())
        if best is None or residual < best[0]:
            best = (residual, alpha, a, e)
    if best is None:  # no decreasing law with a floor fits: the line in log C
        slope, intercept = np.polyfit(log_cs, losses, 1)
        return lambda log_c: intercept + slope * log_c
    _, alpha, a, e = best
    return lambda log_c: e + a * math.exp(-alpha * log_c)


loss = power_law(log_c, [p[2] for p in points])(math.log(BUDGET_FLOPS))
answer = {"n_embd": width, "max_iters": int(BUDGET_FLOPS // flops(width, 1)), "loss_prediction": round(float(loss), 4)}
with open("answer.json", "w") as handle:
    json.dump(answer, handle)
print("answer", answer)
