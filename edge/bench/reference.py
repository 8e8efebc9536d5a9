"""The reference rows of edge-bench: what a user would otherwise run, timed in the same run.

- **Eager PyTorch per sample**: the bundle's network rebuilt as the training
  code's ``nn.Module`` (train.model, the weights of the bundle's program) and
  called once per sample on one window, under ``torch.inference_mode`` with one
  thread, as a user writes it first (the window itself is not counted).
- **Static optimisation per frame**: the static optimisation train-so runs (the
  conventional method the network replaces, train.static_optimization) on one
  frame of the built-in gait over the bundle's balanced coordinates (five by
  default): the generalised forces the frame's motion requires (three-dimensional
  inverse dynamics, pelvis held upright and still, no ground reaction: the
  simulated gait has none), the muscles' moment arms and force factors, and the
  bounded least-squares solve (``static_optimization_frame``).

This is the one place edge/ imports train/, and only here, lazily: the device
install has neither torch nor scipy, and there the rows are skipped with a note.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from edge.bench.timing import summarize, time_calls


class ReferenceUnavailable(RuntimeError):
    """A reference row cannot be measured here; the message says why."""


def _require(*modules: str) -> None:
    import importlib

    for name in modules:
        try:
            importlib.import_module(name)
        except ImportError:
            raise ReferenceUnavailable(
                f"{name} is not installed (the device install has no training stack; "
                f"pip install 'mjca-edge[train]' to measure it)"
            ) from None


def eager_network(bundle: Any) -> Callable[[np.ndarray], np.ndarray]:
    """The bundle's network as an eager ``nn.Module`` (one torch thread): a function of a
    (1, W, 9) float32 window returning the activations (M,)."""
    _require("torch", "train.model")
    import torch

    from train.model import ModelConfig, build_model

    manifest = bundle.manifest
    model = build_model(
        ModelConfig.from_dict(manifest.architecture),
        np.asarray(manifest.input_mean),
        np.asarray(manifest.input_std),
    )
    model.load_state_dict(bundle.load_program().state_dict, strict=True)
    model.eval()
    torch.set_num_threads(1)

    def infer(x: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return model(torch.from_numpy(x)).numpy()[0]

    return infer


def static_optimization_frame(
    subject: Any, balanced: tuple[str, ...]
) -> Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]:
    """One frame's static optimisation for ``subject`` over the ``balanced`` coordinates: a
    function of the frame's pose q, rates qd, accelerations qdd (5,) in rad, rad/s, rad/s²
    returning the activations (M,). The only call into train's static optimisation."""
    _require("torch", "scipy", "train.static_optimization")
    from calib.coordinates import COORDINATES
    from train.dynamics3d import LegModel, inverse_dynamics
    from train.physics_targets import force_factors
    from train.static_optimization import StaticOptimizationConfig, frame_problems, solve_frame

    config = StaticOptimizationConfig()
    model = LegModel.from_subject(subject)
    columns = [COORDINATES.index(c) for c in balanced]
    still = np.zeros((1, 6))

    def solve(q: np.ndarray, qd: np.ndarray, qdd: np.ndarray) -> np.ndarray:
        q, qd, qdd = q[None], qd[None], qdd[None]
        required = inverse_dynamics(model, still, still, still, q, qd, qdd)[:, columns]
        active, passive = force_factors(subject, q, qd)
        arms = subject.moment_arms(q)[..., columns]
        problem = frame_problems(arms, active, passive, required, config.include_passive)
        activation, _ = solve_frame(
            problem.torque_per_activation[0],
            problem.passive_torque[0],
            problem.required_torque[0],
            config,
        )
        return activation

    return solve


def gait_frames(n: int, rate_hz: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``n`` frames of the built-in gait: its five coordinates' angles, velocities and
    accelerations (n, 5), from the gait's own finite differences at ``rate_hz``."""
    from firmware_bridge.normative_gait import load_normative_gait

    gait = load_normative_gait()
    t = np.arange(n + 2) / rate_hz
    q = gait.pose_at_phase(t / gait.period_s).astype(np.float64)
    qd = np.gradient(q, t, axis=0)
    qdd = np.gradient(qd, t, axis=0)
    return q[1:-1], qd[1:-1], qdd[1:-1]


def bench_references(bundle: Any, window: np.ndarray, calls: int, frames: int) -> dict[str, Any]:
    """``{"eager_torch_us": summary | None, "static_optimization_us": summary | None,
    "notes": [why a row is missing]}`` (µs summaries, edge.bench.timing): the eager
    network over ``calls`` calls on ``window``, the static optimisation over ``frames``
    frames of the gait (each timed alone)."""
    out: dict[str, Any] = {"eager_torch_us": None, "static_optimization_us": None, "notes": []}
    try:
        infer = eager_network(bundle)
        out["eager_torch_us"] = summarize(time_calls(lambda: infer(window), calls, warmup=20))
    except ReferenceUnavailable as exc:
        out["notes"].append(f"eager PyTorch reference skipped: {exc}")
    try:
        solve = static_optimization_frame(bundle.subject, bundle.manifest.balanced_coordinates)
        q, qd, qdd = gait_frames(frames + 5, bundle.manifest.sample_rate_hz)
        frame = iter(range(frames + 5))

        def one_frame() -> None:
            k = next(frame)
            solve(q[k], qd[k], qdd[k])

        out["static_optimization_us"] = summarize(time_calls(one_frame, frames, warmup=5))
    except ReferenceUnavailable as exc:
        out["notes"].append(f"static optimisation reference skipped: {exc}")
    return out
