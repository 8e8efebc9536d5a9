"""Figures: estimated against reference muscle activity (Fig. 4 of the paper), and the
training losses per epoch (``plot_losses``).

Matplotlib with the non-interactive Agg backend, so figures render on a headless
machine (CI, a Jetson over ssh) and are written straight to a file.

Readable at any muscle count: one panel per muscle and quantity, five panels to a
row, each quantity's block starting on a new row, at most ``ROWS_PER_PAGE`` rows
to a page, the first panel of each block with the legend. A PDF holds every page; a
PNG (or any other format) is written once per page, ``fig.png``, ``fig_2.png``, ...
Constrained layout places the titles, so two lines of title never run into the panel
above.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.backend_bases import FigureCanvasBase
from matplotlib.backends.backend_pdf import PdfPages

from train.metrics import AlignedSeries, Scores

REFERENCE_STYLE = {"color": "tab:blue", "linestyle": "-", "linewidth": 1.6}
PREDICTION_STYLE = {"color": "tab:red", "linestyle": "--", "linewidth": 1.4}
EMG_STYLE = {"color": "0.45", "linestyle": "-", "linewidth": 1.0}
COLUMNS = 5
ROWS_PER_PAGE = 4


@dataclass(frozen=True)
class Panel:
    """One panel: x values and labelled curves, a two-line title, a y-axis unit."""

    title: str
    unit: str
    x: np.ndarray
    curves: tuple[tuple[str, np.ndarray, dict], ...]


def gait_cycle_axis(time_s: np.ndarray, cycle_s: tuple[float, float] | None) -> np.ndarray:
    """Time as % of the gait cycle [heel strike, next heel strike] in s, or time itself."""
    if cycle_s is None:
        return time_s
    start, end = cycle_s
    return 100.0 * (time_s - start) / (end - start)


def score_line(scores: Scores, i: int) -> str:
    """R^2, r and NRMSE of column ``i`` for a panel title; a dash where undefined."""
    return f"R² {_fmt(scores.r2[i])}  r {_fmt(scores.r[i])}  NRMSE {_fmt(scores.nrmse[i])}"


def comparison_panels(
    rows: Sequence[tuple[str, str, AlignedSeries, Scores]],
    muscles: Sequence[str],
    cycle_s: tuple[float, float] | None = None,
) -> list[list[Panel]]:
    """One block of panels per quantity, one panel per muscle of ``muscles`` it scores."""
    blocks = []
    for quantity, unit, series, scores in rows:
        x = gait_cycle_axis(series.time, cycle_s)
        block = []
        for name in muscles:
            if name not in series.columns:
                continue
            i = series.columns.index(name)
            block.append(
                Panel(
                    title=f"{name} {quantity}\n{score_line(scores, i)}",
                    unit=unit,
                    x=x,
                    curves=(
                        ("reference", series.reference[:, i], REFERENCE_STYLE),
                        ("estimate", series.prediction[:, i], PREDICTION_STYLE),
                    ),
                )
            )
        blocks.append(block)
    return blocks


def write_panels(
    path: str | Path,
    blocks: Sequence[Sequence[Panel]],
    x_label: str,
    title: str = "",
) -> list[Path]:
    """Lay ``blocks`` out in pages (module doc) and write them; returns the files written."""
    rows: list[list[tuple[Panel, bool]]] = []  # (panel, whether it carries its block's legend)
    for block in blocks:
        marked = [(panel, k == 0) for k, panel in enumerate(block)]
        rows.extend(marked[k : k + COLUMNS] for k in range(0, len(marked), COLUMNS))
    pages = [rows[k : k + ROWS_PER_PAGE] for k in range(0, len(rows), ROWS_PER_PAGE)]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figures = [
        _page(page, x_label, _page_title(title, n, len(pages))) for n, page in enumerate(pages)
    ]
    try:
        if path.suffix.lower() == ".pdf":
            with PdfPages(path) as pdf:
                for figure in figures:
                    pdf.savefig(figure)
            return [path]
        written = [page_path(path, n) for n in range(len(figures))]
        for figure, target in zip(figures, written):
            figure.savefig(target, dpi=120)
        return written
    finally:
        for figure in figures:
            plt.close(figure)


def figure_formats() -> tuple[str, ...]:
    """The file extensions (without the dot) matplotlib can write here."""
    return tuple(sorted(FigureCanvasBase.get_supported_filetypes()))


def page_path(path: Path, index: int) -> Path:
    """The file of page ``index`` (0-based): the path itself, then NAME_2.EXT, ..."""
    return path if index == 0 else path.with_name(f"{path.stem}_{index + 1}{path.suffix}")


def plot_comparison(
    path: str | Path,
    rows: list[tuple[str, str, AlignedSeries, Scores]],
    cycle_s: tuple[float, float] | None = None,
    title: str = "",
    muscles: Sequence[str] | None = None,
    extra_blocks: Sequence[Sequence[Panel]] = (),
) -> list[Path]:
    """Reference (solid) and estimate (dashed) per muscle and quantity, paged.

    ``rows``: (quantity label, unit, aligned series, scores) per quantity, e.g.
    activations then forces; ``muscles`` the columns to draw (default: every
    column of the first quantity); ``extra_blocks`` further panels (EMG) after
    them. ``cycle_s`` (heel strike, next heel strike) puts the x axis in % of the
    gait cycle, otherwise it is time in s. Returns the files written.
    """
    if muscles is None:
        muscles = rows[0][2].columns
    blocks = [*comparison_panels(rows, muscles, cycle_s), *extra_blocks]
    x_label = "gait cycle (%)" if cycle_s is not None else "time (s)"
    return write_panels(path, [b for b in blocks if b], x_label, title)


def _page(rows: list[list[tuple[Panel, bool]]], x_label: str, title: str):
    n_columns = max(len(r) for r in rows)
    figure, axes = plt.subplots(
        len(rows),
        n_columns,
        figsize=(3.0 * n_columns, 2.5 * len(rows) + (0.4 if title else 0.0)),
        squeeze=False,
        layout="constrained",
    )
    for r, row in enumerate(rows):
        for c in range(n_columns):
            axis = axes[r, c]
            if c >= len(row):
                axis.set_visible(False)
                continue
            panel, legend = row[c]
            for label, values, style in panel.curves:
                axis.plot(panel.x, values, label=label, **style)
            axis.set_title(panel.title, fontsize=8)
            axis.set_ylabel(panel.unit, fontsize=8)
            axis.set_xlabel(x_label, fontsize=7)
            axis.tick_params(labelsize=7)
            if legend:
                axis.legend(fontsize=6, loc="best")
    if title:
        figure.suptitle(title, fontsize=10)
    return figure


def _page_title(title: str, index: int, pages: int) -> str:
    if pages == 1:
        return title
    return f"{title} (page {index + 1} of {pages})".strip()


def _fmt(value: float) -> str:
    return f"{value:.2f}" if math.isfinite(value) else "–"


def plot_losses(history: list[dict[str, float]], path: Path) -> None:
    """train-fit's loss plot: each logged loss component per epoch, train solid and
    validation dashed, on a log scale where every value is positive."""
    names = [k[len("train_") :] for k in history[0] if k.startswith("train_")]
    figure, axes = plt.subplots(1, len(names), figsize=(3.2 * len(names), 3.0), squeeze=False)
    epochs = [r["epoch"] for r in history]
    for axis, name in zip(axes[0], names):
        axis.plot(epochs, [r[f"train_{name}"] for r in history], label="train")
        if f"validation_{name}" in history[0]:
            axis.plot(epochs, [r[f"validation_{name}"] for r in history], "--", label="validation")
        axis.set_title(name)
        axis.set_xlabel("epoch")
        if all(r[f"train_{name}"] > 0 for r in history):
            axis.set_yscale("log")
    axes[0][0].legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
