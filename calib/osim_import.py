"""Build a ``Subject`` from an OpenSim model (.osim): segments, joints, muscles and paths.

The model is read by ``calib.osim_model`` (official ``opensim`` bindings).
Muscle paths: OpenSim evaluates each muscle's length, and its moment arms by
central differences, at quasi-random (Sobol) poses filling the fitted box of
the five coordinates (``FIT_RANGE_DEG``: the accuracy box ``CHECK_RANGE_DEG``
plus a margin, inside the model's coordinate ranges) with every other
coordinate at 0. A muscle crosses a coordinate when its moment arm about it
exceeds ``CROSSING_THRESHOLD_M`` somewhere in those poses; its length is then
fitted by ``calib.path_fit`` in the coordinates it crosses (lengths and moment
arms jointly, degree by held-out error on a second Sobol set). The reported
errors are against OpenSim's own lengths and moment arms
(``Muscle.computeMomentArm``) at uniformly random poses in the accuracy box,
none of them used in the fit.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.stats import qmc
from tqdm import tqdm

from calib.coordinates import COORDINATES, PAPER_MUSCLES, SEGMENT_NAMES
from calib.osim_model import OsimModel
from calib.path_fit import (
    CHECK_RANGE_DEG,
    LENGTH_TARGET_M,
    MOMENT_ARM_TARGET_M,
    FitError,
    FitSettings,
    PathSamples,
    fit_path,
    path_error,
)
from calib.subject import Body, Muscle, Segment, Subject, SubjectError

# The fitted box extends the checked one by this margin on each side, inside the model's range.
FIT_MARGIN_DEG = 5.0
# Sobol poses for fitting and for choosing the degree (powers of two keep the sequence balanced).
TRAIN_POSES = 4096
HELD_OUT_POSES = 1024
VALIDATION_POSES = 300
# A muscle crosses a coordinate where its moment arm about it exceeds this anywhere (m).
CROSSING_THRESHOLD_M = 1e-4
# --muscles all: right-leg muscles whose moment arm about one of the coordinates exceeds this (m).
ACTIVE_MOMENT_ARM_M = 1e-3
SEED = 2392


@dataclass(frozen=True)
class MuscleFitReport:
    """How well one muscle's polynomial matches OpenSim on poses not used in the fit."""

    name: str
    crosses: tuple[str, ...]
    degree: int
    terms: int
    validation: FitError


@dataclass(frozen=True)
class ImportResult:
    subject: Subject
    reports: tuple[MuscleFitReport, ...]


def check_box() -> np.ndarray:
    """(lo, hi) rad per coordinate of the accuracy box, shape (5, 2), ``COORDINATES`` order."""
    return np.radians([CHECK_RANGE_DEG[c] for c in COORDINATES])


def fit_box(model: OsimModel) -> np.ndarray:
    """The fitted box (5, 2) rad: the accuracy box plus the margin, inside the model's ranges."""
    margin = math.radians(FIT_MARGIN_DEG)
    out = []
    for c, (lo, hi) in zip(COORDINATES, check_box()):
        c_lo, c_hi = model.coordinate_range(c)
        out.append((max(lo - margin, c_lo), min(hi + margin, c_hi)))
    return np.array(out)


def sobol_poses(box: np.ndarray, n: int, seed: int) -> np.ndarray:
    """n scrambled Sobol poses (n, 5) filling ``box`` (5, 2) rad."""
    unit = qmc.Sobol(len(box), scramble=True, seed=seed).random(n)
    return qmc.scale(unit, box[:, 0], box[:, 1])


def random_poses(box: np.ndarray, n: int, seed: int) -> np.ndarray:
    """n uniformly random poses (n, 5) in ``box`` (5, 2) rad."""
    rng = np.random.default_rng(seed)
    return box[:, 0] + rng.random((n, len(box))) * (box[:, 1] - box[:, 0])


def resolve_muscles(model: OsimModel, spec: str | None) -> list[str] | None:
    """The named muscles, checked against the model: ``None`` or "all" gives ``None`` (every
    active right-leg muscle, decided from OpenSim's moment arms); "paper" the paper's ten;
    else a comma-separated list."""
    if spec is None or spec.strip() == "all":
        return None
    if spec.strip() == "paper":
        names = list(PAPER_MUSCLES)
    else:
        names = [n.strip() for n in spec.split(",") if n.strip()]
        if not names:
            raise SubjectError(
                "--muscles: expected 'all', 'paper' or a comma-separated list of muscle names"
            )
    for n in names:
        model.muscle(n)
    return names


def import_osim(
    path: str | Path,
    muscles: str | None = None,
    height: float | None = None,
    generic_leg_length: float | None = None,
    generic_height: float | None = None,
    progress: bool = True,
    train_poses: int = TRAIN_POSES,
    held_out_poses: int = HELD_OUT_POSES,
    validation_poses: int = VALIDATION_POSES,
) -> ImportResult:
    """Read a model and fit its muscle paths; see the module docstring.

    ``muscles``: None or "all" for every right-leg muscle with a moment arm above
    ``ACTIVE_MOMENT_ARM_M`` about one of the five coordinates, "paper" for the
    paper's ten, or a comma-separated list. ``height`` (m) is the person's
    standing height; OpenSim models do not store one, so without it the height
    is estimated as ``generic_height`` times the ratio of this model's
    thigh+shank length to ``generic_leg_length`` (generic gait2392 proportions).
    """
    model = OsimModel(path)
    named = resolve_muscles(model, muscles)
    segments = model.segments()
    if height is None:
        if generic_height is None or generic_leg_length is None:
            raise SubjectError("the person's height is needed: pass --height H (m)")
        height = generic_height * leg_length(segments) / generic_leg_length
    box = fit_box(model)
    joints = model.joints({c: (float(lo), float(hi)) for c, (lo, hi) in zip(COORDINATES, box)})
    model.check_joint_rotations(joints, random_poses(box, 20, SEED))
    settings = FitSettings(ranges=tuple((float(lo), float(hi)) for lo, hi in box))

    candidates = model.right_leg_muscles() if named is None else named
    train_q = sobol_poses(box, train_poses, SEED)
    train_l, train_r = model.sample_paths(candidates, train_q, progress, "OpenSim, fitting poses")
    peak = np.abs(train_r).max(axis=0)
    if named is None:
        keep = [i for i in range(len(candidates)) if peak[i].max() > ACTIVE_MOMENT_ARM_M]
    else:
        keep = list(range(len(candidates)))
        idle = [n for n, p in zip(named, peak) if p.max() <= CROSSING_THRESHOLD_M]
        if idle:
            raise SubjectError(
                f"muscle '{idle[0]}' has no moment arm about any of "
                f"{', '.join(model.coordinates[j].getName() for j in range(len(COORDINATES)))} "
                "in the fitted range: leave it out of --muscles"
            )
    names = [candidates[i] for i in keep]
    train_l, train_r, peak = train_l[:, keep], train_r[:, keep], peak[keep]
    crosses = {
        n: tuple(c for j, c in enumerate(COORDINATES) if peak[i, j] > CROSSING_THRESHOLD_M)
        for i, n in enumerate(names)
    }
    held_q = sobol_poses(box, held_out_poses, SEED + 1)
    held_l, held_r = model.sample_paths(names, held_q, progress, "OpenSim, held-out poses")
    check_q = random_poses(check_box(), validation_poses, SEED + 2)
    check_l = model.lengths(names, check_q)
    check_r = model.opensim_moment_arms(names, check_q, progress, "OpenSim, check moment arms")

    fitted, reports = [], []
    for i, n in enumerate(
        tqdm(names, desc="fitting muscle paths", unit="muscle", disable=not progress)
    ):
        muscle_path, degree, _ = fit_path(
            PathSamples(train_q, train_l[:, i], train_r[:, i]),
            PathSamples(held_q, held_l[:, i], held_r[:, i]),
            crosses[n],
            settings,
        )
        check = path_error(muscle_path, PathSamples(check_q, check_l[:, i], check_r[:, i]))
        reports.append(MuscleFitReport(n, crosses[n], degree, len(muscle_path.exponents), check))
        fitted.append(Muscle(name=n, path=muscle_path, **model.muscle_parameters(n)))

    subject = Subject(
        body=Body(mass=model.total_mass(), height=float(height), side="right"),
        hip_centre=model.hip_centre(),
        segments=segments,
        joints=joints,
        muscles=tuple(fitted),
        source=f"calib-subject --osim {model.path.name}",
    )
    return ImportResult(subject, tuple(reports))


def leg_length(segments: Mapping[str, Segment]) -> float:
    """Thigh plus shank length (m): hip-to-knee plus knee-to-ankle distance."""
    return float(sum(np.linalg.norm(segments[s].distal_joint) for s in SEGMENT_NAMES[:2]))


COLUMN_LABELS = {
    "hip_flexion": "hip_flex",
    "hip_adduction": "hip_add",
    "hip_rotation": "hip_rot",
    "knee_angle": "knee",
    "ankle_angle": "ankle",
}


def format_report(reports: Sequence[MuscleFitReport]) -> str:
    """The per-muscle error table (mm) against OpenSim on poses not used in the fit."""
    header = f"{'muscle':<12}{'crosses':<31}{'deg':>4}{'terms':>6}{'length':>13}"
    header += "".join(f"{COLUMN_LABELS[c]:>13}" for c in COORDINATES)
    title = "errors against OpenSim (mm, RMS/max) at poses not used in the fit"
    lines = [title + "; moment arms per coordinate", header]
    for r in reports:
        e = r.validation
        crossed = "+".join(COLUMN_LABELS[c] for c in r.crosses)
        row = f"{r.name:<12}{crossed:<31}{r.degree:>4}{r.terms:>6}"
        row += f"{_pair_mm(e.length_rms, e.length_max):>13}"
        row += "".join(
            f"{_pair_mm(rms, mx):>13}" for rms, mx in zip(e.moment_arm_rms, e.moment_arm_max)
        )
        lines.append(row)
    worst_l = max(reports, key=lambda r: r.validation.length_rms)
    worst_r = max(reports, key=lambda r: max(r.validation.moment_arm_rms))
    arm = worst_r.validation.moment_arm_rms
    coordinate = COORDINATES[int(np.argmax(arm))]
    lines.append(
        f"worst: length RMS {worst_l.validation.length_rms * 1e3:.3f} mm ({worst_l.name}; "
        f"target {LENGTH_TARGET_M * 1e3:g}), moment-arm RMS {max(arm) * 1e3:.3f} mm "
        f"({worst_r.name}, {coordinate}; target {MOMENT_ARM_TARGET_M * 1e3:g}); "
        f"{sum(r.terms for r in reports)} terms in all"
    )
    return "\n".join(lines)


def _pair_mm(rms: float, mx: float) -> str:
    return f"{rms * 1e3:.3f}/{mx * 1e3:.2f}"
