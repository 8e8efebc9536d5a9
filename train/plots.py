"""Figures of estimated against reference muscle activity (Fig. 4 of the paper).

Matplotlib with the non-interactive Agg backend, so figures render on a headless
machine (CI, a Jetson over ssh) and are written straight to a file.
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from train.metrics import AlignedSeries, Scores

REFERENCE_STYLE = {"color": "tab:blue", "linestyle": "-", "linewidth": 1.6}
PREDICTION_STYLE = {"color": "tab:red", "linestyle": "--", "linewidth": 1.4}


def gait_cycle_axis(time_s: np.ndarray, cycle_s: tuple[float, float] | None) -> np.ndarray:
    """Time as % of the gait cycle [heel strike, next heel strike] in s, or time itself."""
    if cycle_s is None:
        return time_s
    start, end = cycle_s
    return 100.0 * (time_s - start) / (end - start)


def plot_comparison(
    path: str | Path,
    rows: list[tuple[str, str, AlignedSeries, Scores]],
    cycle_s: tuple[float, float] | None = None,
    title: str = "",
    max_columns: int = 5,
) -> Path:
    """One panel per muscle and quantity: reference (solid) and prediction (dashed).

    ``rows``: (quantity label, unit, aligned series, scores) per quantity, e.g.
    activations then forces; each quantity fills its own block of panels with
    R^2 and NRMSE in each panel's title. ``cycle_s`` (heel strike, next heel
    strike) puts the x axis in % of the gait cycle, otherwise it is time in s.
    """
    n_muscles = max(len(series.columns) for _, _, series, _ in rows)
    columns = min(max_columns, n_muscles)
    block_rows = math.ceil(n_muscles / columns)
    figure, axes = plt.subplots(
        block_rows * len(rows),
        columns,
        figsize=(3.0 * columns, 2.3 * block_rows * len(rows)),
        squeeze=False,
    )
    x_label = "gait cycle (%)" if cycle_s is not None else "time (s)"
    for block, (quantity, unit, series, scores) in enumerate(rows):
        x = gait_cycle_axis(series.time, cycle_s)
        for i, name in enumerate(series.columns):
            axis = axes[block * block_rows + i // columns, i % columns]
            axis.plot(x, series.reference[:, i], label="reference", **REFERENCE_STYLE)
            axis.plot(x, series.prediction[:, i], label="estimate", **PREDICTION_STYLE)
            axis.set_title(
                f"{name} {quantity}\nR²={scores.r2[i]:.2f} NRMSE={scores.nrmse[i]:.2f}",
                fontsize=8,
            )
            axis.set_ylabel(unit, fontsize=8)
            axis.set_xlabel(x_label, fontsize=7)
            axis.tick_params(labelsize=7)
        for i in range(len(series.columns), block_rows * columns):
            axes[block * block_rows + i // columns, i % columns].set_visible(False)
    axes[0, 0].legend(fontsize=7, loc="best")
    if title:
        figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path
