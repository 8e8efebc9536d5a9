"""What a finished training reports: the losses, the torque balance per coordinate and, where
there are reference activations, R^2, r and NRMSE per muscle, for ``metrics.json``; and the
few lines ``train-fit`` prints at the end.

The torque balance is how much of the torque the balanced coordinates require the
muscles' torque supplies: ``balanced_share`` = 1 - sum |required - muscle torque| /
sum |required| (1: all of it, 0: no better than no muscle torque at all).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from train.fit_config import TrainingConfig
from train.hill import forces_from_gains, generalized_forces
from train.metrics import score_samples
from train.run import LOSSES_PLOT_FILE
from train.training_loop import evaluate


def set_metrics(
    model: torch.nn.Module,
    sets: dict[str, dict[str, torch.Tensor] | None],
    balanced: tuple[str, ...],
    muscle_names: tuple[str, ...],
    config: TrainingConfig,
) -> dict[str, Any]:
    """Per named set of windows (``train``, ``validation``; None: left out) its mean losses
    (``train.training_loop.evaluate``), torque balance and activation range, and its
    activation scores where it has ``labels``."""
    metrics: dict[str, Any] = {}
    for name, tensors in sets.items():
        if tensors is None:
            continue
        parts, activation = evaluate(model, tensors, config)
        device = tensors["force_gain"].device
        forces = forces_from_gains(
            torch.as_tensor(activation, device=device),
            tensors["force_gain"],
            tensors["force_passive"],
        )
        torque = generalized_forces(forces, tensors["moment_arms"])
        required = tensors["required_torque"].cpu().numpy().astype(np.float64)
        balance = torque_balance(torque.cpu().numpy().astype(np.float64), required, balanced)
        metrics[name] = {
            "losses": parts,
            "torque_rmse_nm": {c: balance[c]["rmse_nm"] for c in balanced},
            "torque_balance": balance,
            "activation_range": [float(activation.min()), float(activation.max())],
        }
        if "labels" in tensors:
            metrics[name]["activation"] = activation_scores(
                tensors["labels"].cpu().numpy(), activation, muscle_names
            )
    return metrics


def activation_scores(
    labels: np.ndarray, activation: np.ndarray, names: Sequence[str]
) -> dict[str, Any]:
    """R^2, r and NRMSE per muscle (``train.metrics.score_samples``) as JSON-ready data."""
    return score_samples(labels, activation, tuple(names)).to_dict()


def torque_balance(torque: np.ndarray, required: np.ndarray, names: tuple[str, ...]) -> dict:
    """How well the muscles' torque (K, C) N m meets the required torque (K, C), per coordinate.

    ``rmse_nm``; ``peak_nm`` the largest |required|; ``rmse_percent_of_peak``;
    ``balanced_share`` = 1 - sum |required - torque| / sum |required| (1: all of it
    balanced, 0: no better than no muscle torque at all), per coordinate and ``all``.
    """
    residual = np.abs(required - torque)
    rmse = np.sqrt(np.mean(residual**2, axis=0))
    peak = np.abs(required).max(axis=0)
    demand = np.abs(required).sum(axis=0)
    share = 1.0 - residual.sum(axis=0) / np.where(demand > 0, demand, 1.0)
    per = {
        name: {
            "rmse_nm": float(rmse[j]),
            "peak_nm": float(peak[j]),
            "rmse_percent_of_peak": float(100 * rmse[j] / peak[j]) if peak[j] > 0 else None,
            "balanced_share": float(share[j]),
        }
        for j, name in enumerate(names)
    }
    total = float(np.abs(required).sum())
    per["all"] = {"balanced_share": 1.0 - float(residual.sum()) / total if total > 0 else None}
    return per


def training_summary(metrics: dict[str, Any], out: Path) -> str:
    """The end of a run in a few lines: time, why it stopped, the torque balance, the files."""
    name = "validation" if "validation" in metrics else "train"
    balance = metrics[name]["torque_balance"]
    width = max(len("coordinate"), *(len(c) for c in balance))
    done = f"{metrics['training_seconds']:.1f} s, {metrics['epochs']} epochs"
    lines = [
        f"train-fit: {done}, stopped by {metrics['stopped_by']}",
        f"torque balance on the {name} windows"
        + (" (the last part of each trial, held out)" if name == "validation" else "")
        + ":",
        f"  {'coordinate':<{width}}  {'RMSE N m':>9}  {'% of peak':>9}  {'balanced':>8}",
    ]
    for coordinate, entry in balance.items():
        share = entry["balanced_share"]
        share_text = "-" if share is None else f"{100 * share:.1f} %"
        if coordinate == "all":
            lines.append(f"  {'all':<{width}}  {'':>9}  {'':>9}  {share_text:>8}")
            continue
        percent = entry["rmse_percent_of_peak"]
        lines.append(
            f"  {coordinate:<{width}}  {entry['rmse_nm']:>9.2f}  "
            f"{'-' if percent is None else f'{percent:.1f} %':>9}  {share_text:>8}"
        )
    lines.append("  (balanced = 1 - sum |required - muscle torque| / sum |required torque|)")
    lines.append(f"loss plot: {out / LOSSES_PLOT_FILE}; run: {out}")
    return "\n".join(lines)
