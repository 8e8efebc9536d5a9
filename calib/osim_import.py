"""Build a ``Subject`` from an OpenSim model (.osim) through the official ``opensim`` bindings.

What is read, at OpenSim's default pose (every coordinate at its default):
- segments: thigh = femur_r, shank = tibia_r (+ patella_r where the model has
  one), foot = talus_r + calcn_r + toes_r combined; mass, sagittal inertia about
  the combined centre of mass (the body inertias rotated into ground, parallel
  axis theorem in the sagittal plane), centre of mass and distal joint centre
  relative to the proximal joint centre in ground axes (x anterior, y superior).
  The foot's distal joint is the mtp joint centre.
- the hip joint centre in the pelvis frame;
- the muscles' Hill parameters as OpenSim stores them;
- each muscle's length, evaluated by OpenSim on a grid of (hip_flexion_r,
  knee_angle_r, ankle_angle_r) with every other coordinate at its default, and
  fitted by ``calib.path_fit`` (lengths and moment arms, degree by held-out
  error).

The planar chain keeps the joint centres where OpenSim puts them at the default
pose, with ideal hinges about z: gait2392's knee translates with flexion
(coupled translations), which the segment geometry ignores; muscle lengths keep
it because OpenSim evaluated them with the full knee.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from calib.path_fit import FitError, FitSettings, PathSamples, fit_path, path_error
from calib.subject import (
    JOINT_NAMES,
    Body,
    Joint,
    Muscle,
    Segment,
    Subject,
    SubjectError,
)

PAPER_MUSCLES = (
    "psoas_r",
    "rect_fem_r",
    "bifemlh_r",
    "semimem_r",
    "iliacus_r",
    "vas_int_r",
    "vas_lat_r",
    "vas_med_r",
    "lat_gas_r",
    "med_gas_r",
)
COORDINATES = {"hip": "hip_flexion_r", "knee": "knee_angle_r", "ankle": "ankle_angle_r"}
# Walking ranges (deg) the fit must serve; the fit covers them plus a margin, within
# the model's coordinate ranges.
WALKING_RANGE_DEG = {"hip": (-30.0, 60.0), "knee": (-120.0, 10.0), "ankle": (-40.0, 30.0)}
FIT_MARGIN_DEG = 5.0
# A muscle crosses a joint where its moment arm about it exceeds this anywhere (m).
CROSSING_THRESHOLD_M = 1e-4
# --muscles all: right-leg muscles whose moment arm about a flexion coordinate exceeds this (m).
ACTIVE_MOMENT_ARM_M = 1e-3
FD_STEP_RAD = 1e-6
GRID_POINTS = {1: 81, 2: 41, 3: 15}
SEGMENT_BODIES = {
    "thigh": ("femur_r",),
    "shank": ("tibia_r", "patella_r"),
    "foot": ("talus_r", "calcn_r", "toes_r"),
}
SEGMENT_JOINTS = {
    "thigh": ("hip_r", "knee_r"),
    "shank": ("knee_r", "ankle_r"),
    "foot": ("ankle_r", "mtp_r"),
}


@dataclass(frozen=True)
class MuscleFitReport:
    """How well one muscle's polynomial matches OpenSim on poses not used in the fit."""

    name: str
    crosses: tuple[str, ...]
    degree: int
    validation: FitError


@dataclass(frozen=True)
class ImportResult:
    subject: Subject
    reports: tuple[MuscleFitReport, ...]


def _opensim():
    try:
        import opensim
    except ImportError as exc:
        raise SubjectError(
            "reading an .osim model needs the official OpenSim bindings: "
            "pip install 'mjca-edge[opensim]' (opensim 4.6)"
        ) from exc
    return opensim


class OsimModel:
    """An OpenSim model at its default pose, with length and moment-arm evaluation."""

    def __init__(self, path: str | Path):
        osim = _opensim()
        path = Path(path)
        if not path.is_file():
            raise SubjectError(f"OpenSim model not found: {path}")
        # Loading chatter (format updates, missing meshes) would bury the fit table, so
        # OpenSim's log level is left at "error" (restoring it logs a line of its own).
        osim.Logger.setLevelString("error")
        try:
            self.model = osim.Model(str(path))
            self.state = self.model.initSystem()
        except RuntimeError as exc:
            detail = " ".join(str(exc).split())[:240]
            raise SubjectError(f"OpenSim cannot load {path} as a model: {detail}") from exc
        self.path = path
        coords = self.model.getCoordinateSet()
        for name in COORDINATES.values():
            if not coords.contains(name):
                raise SubjectError(
                    f"{path} has no coordinate '{name}': calib needs a gait2392-family "
                    "model with hip_flexion_r, knee_angle_r, ankle_angle_r"
                )
        self.coordinates = [coords.get(COORDINATES[j]) for j in JOINT_NAMES]
        self.default_q = np.array([c.getDefaultValue() for c in self.coordinates])
        self._muscles = self.model.getMuscles()

    def muscle(self, name: str):
        if not self._muscles.contains(name):
            raise SubjectError(f"{self.path} has no muscle named '{name}'")
        return self._muscles.get(name)

    def right_leg_muscles(self) -> list[str]:
        return [
            self._muscles.get(i).getName()
            for i in range(self._muscles.getSize())
            if self._muscles.get(i).getName().endswith("_r")
        ]

    def coordinate_range(self, joint: str) -> tuple[float, float]:
        c = self.coordinates[JOINT_NAMES.index(joint)]
        return (c.getRangeMin(), c.getRangeMax())

    def _set_pose(self, q: np.ndarray) -> None:
        for c, value in zip(self.coordinates, q):
            c.setValue(self.state, float(value), False)
        self.model.realizePosition(self.state)

    def default_pose(self) -> None:
        self._set_pose(self.default_q)

    def lengths(self, names: Sequence[str], q: np.ndarray) -> np.ndarray:
        """Muscle-tendon lengths (N, M) in m at poses q (N, 3) rad."""
        muscles = [self.muscle(n) for n in names]
        out = np.empty((len(q), len(muscles)))
        for i, pose in enumerate(q):
            self._set_pose(pose)
            out[i] = [m.getLength(self.state) for m in muscles]
        self.default_pose()
        return out

    def fd_moment_arms(self, names: Sequence[str], q: np.ndarray) -> np.ndarray:
        """r = -dl/dq (N, M, 3) in m by central differences of OpenSim's lengths."""
        out = np.empty((len(q), len(names), 3))
        for j in range(3):
            step = np.zeros(3)
            step[j] = FD_STEP_RAD
            plus = self.lengths(names, q + step)
            minus = self.lengths(names, q - step)
            out[:, :, j] = -(plus - minus) / (2 * FD_STEP_RAD)
        return out

    def opensim_moment_arms(self, names: Sequence[str], q: np.ndarray) -> np.ndarray:
        """OpenSim's own moment arms (N, M, 3) in m (Muscle.computeMomentArm)."""
        muscles = [self.muscle(n) for n in names]
        out = np.empty((len(q), len(muscles), 3))
        for i, pose in enumerate(q):
            self._set_pose(pose)
            for k, m in enumerate(muscles):
                out[i, k] = [m.computeMomentArm(self.state, c) for c in self.coordinates]
        self.default_pose()
        return out

    def total_mass(self) -> float:
        bodies = self.model.getBodySet()
        return float(sum(bodies.get(i).getMass() for i in range(bodies.getSize())))

    def segments(self) -> tuple[dict[str, Segment], tuple[float, float]]:
        """Planar segments at the default pose, and the hip centre (x, y) in the pelvis frame."""
        self.default_pose()
        bodies = self.model.getBodySet()
        joints = self.model.getJointSet()
        for needed in ("pelvis", "femur_r", "tibia_r", "talus_r", "calcn_r", "toes_r"):
            if not bodies.contains(needed):
                raise SubjectError(f"{self.path} has no body '{needed}' (gait2392 bodies needed)")
        for needed in ("hip_r", "knee_r", "ankle_r", "mtp_r"):
            if not joints.contains(needed):
                raise SubjectError(f"{self.path} has no joint '{needed}' (gait2392 joints needed)")

        def centre(joint: str) -> np.ndarray:
            p = joints.get(joint).getChildFrame().getPositionInGround(self.state)
            return np.array([p.get(0), p.get(1)])

        segments = {}
        for name, body_names in SEGMENT_BODIES.items():
            proximal, distal = (centre(j) for j in SEGMENT_JOINTS[name])
            parts = [bodies.get(b) for b in body_names if bodies.contains(b)]
            masses = np.array([b.getMass() for b in parts])
            coms = np.array([self._com_in_ground(b) for b in parts])
            mass = float(masses.sum())
            com = (masses[:, None] * coms).sum(axis=0) / mass
            inertia = sum(
                self._sagittal_inertia(b) + m * float(np.sum((c - com) ** 2))
                for b, m, c in zip(parts, masses, coms)
            )
            segments[name] = Segment(
                mass=mass,
                inertia=float(inertia),
                com=_pair(com - proximal),
                distal_joint=_pair(distal - proximal),
            )
        hip = joints.get("hip_r").getChildFrame().getPositionInGround(self.state)
        in_pelvis = self.model.getGround().findStationLocationInAnotherFrame(
            self.state, hip, bodies.get("pelvis")
        )
        return segments, (in_pelvis.get(0), in_pelvis.get(1))

    def _com_in_ground(self, body) -> np.ndarray:
        p = body.findStationLocationInGround(self.state, body.getMassCenter())
        return np.array([p.get(0), p.get(1)])

    def _sagittal_inertia(self, body) -> float:
        """I_zz about the body's centre of mass in ground axes (kg*m^2)."""
        moments = body.getInertia().getMoments()
        products = body.getInertia().getProducts()
        tensor = np.array(
            [
                [moments.get(0), products.get(0), products.get(1)],
                [products.get(0), moments.get(1), products.get(2)],
                [products.get(1), products.get(2), moments.get(2)],
            ]
        )
        rot = body.getTransformInGround(self.state).R()
        r = np.array([[rot.get(i, j) for j in range(3)] for i in range(3)])
        return float((r @ tensor @ r.T)[2, 2])

    def muscle_parameters(self, name: str) -> dict[str, float]:
        m = self.muscle(name)
        return {
            "max_isometric_force": m.getMaxIsometricForce(),
            "optimal_fiber_length": m.getOptimalFiberLength(),
            "tendon_slack_length": m.getTendonSlackLength(),
            "pennation_at_optimal": m.getPennationAngleAtOptimalFiberLength(),
            "max_contraction_velocity": m.getMaxContractionVelocity(),
        }


def walking_box(joints: Sequence[str] = JOINT_NAMES) -> np.ndarray:
    """(lo, hi) rad of the walking range per joint, shape (len(joints), 2)."""
    return np.radians([WALKING_RANGE_DEG[j] for j in joints])


def fit_range(model: OsimModel) -> tuple[tuple[float, float], ...]:
    """The fitted range per joint: walking range plus margin, inside the model's range (rad)."""
    out = []
    for j in JOINT_NAMES:
        lo, hi = np.radians(WALKING_RANGE_DEG[j])
        margin = math.radians(FIT_MARGIN_DEG)
        c_lo, c_hi = model.coordinate_range(j)
        out.append((max(lo - margin, c_lo), min(hi + margin, c_hi)))
    return tuple(out)


def _grid(joint_range, crosses: tuple[str, ...], default_q: np.ndarray, midpoints: bool):
    """Poses on a regular grid over the crossed joints (others at default)."""
    n = GRID_POINTS[len(crosses)]
    axes = []
    for j in crosses:
        lo, hi = joint_range[JOINT_NAMES.index(j)]
        nodes = np.linspace(lo, hi, n)
        axes.append((nodes[:-1] + nodes[1:]) / 2 if midpoints else nodes)
    mesh = np.meshgrid(*axes, indexing="ij")
    q = np.tile(default_q, (mesh[0].size, 1))
    for j, values in zip(crosses, mesh):
        q[:, JOINT_NAMES.index(j)] = values.ravel()
    return q


def _random_poses(n: int, seed: int) -> np.ndarray:
    box = walking_box()
    rng = np.random.default_rng(seed)
    return box[:, 0] + rng.random((n, 3)) * (box[:, 1] - box[:, 0])


def crossing(model: OsimModel, names: Sequence[str]) -> dict[str, tuple[str, ...]]:
    """The joints each muscle crosses: max |moment arm| above ``CROSSING_THRESHOLD_M`` on a coarse grid."""
    box = walking_box()
    axes = [np.linspace(lo, hi, 6) for lo, hi in box]
    q = np.stack([a.ravel() for a in np.meshgrid(*axes, indexing="ij")], axis=-1)
    peak = np.abs(model.fd_moment_arms(names, q)).max(axis=0)
    return {
        n: tuple(j for k, j in enumerate(JOINT_NAMES) if peak[i, k] > CROSSING_THRESHOLD_M)
        for i, n in enumerate(names)
    }


def active_leg_muscles(model: OsimModel) -> list[str]:
    """Right-leg muscles with a moment arm above ``ACTIVE_MOMENT_ARM_M`` about a flexion coordinate."""
    names = model.right_leg_muscles()
    box = walking_box()
    axes = [np.linspace(lo, hi, 5) for lo, hi in box]
    q = np.stack([a.ravel() for a in np.meshgrid(*axes, indexing="ij")], axis=-1)
    peak = np.abs(model.fd_moment_arms(names, q)).max(axis=(0, 2))
    return [n for n, p in zip(names, peak) if p > ACTIVE_MOMENT_ARM_M]


def resolve_muscles(model: OsimModel, spec: str | None) -> list[str]:
    """``None``: the paper's ten; ``"all"``: every active right-leg muscle; else a comma list."""
    if spec is None:
        names = list(PAPER_MUSCLES)
    elif spec.strip() == "all":
        return active_leg_muscles(model)
    else:
        names = [n.strip() for n in spec.split(",") if n.strip()]
        if not names:
            raise SubjectError(
                "--muscles: expected 'all' or a comma-separated list of muscle names"
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
    validation_poses: int = 300,
) -> ImportResult:
    """Read a model and fit its muscle paths; see the module docstring.

    ``muscles``: None for the paper's ten, "all", or a comma-separated list.
    ``height`` (m) is the person's standing height; OpenSim models do not store
    one, so without it the height is estimated as ``generic_height`` times the
    ratio of this model's thigh+shank length to ``generic_leg_length`` (the
    generic gait2392 proportions). ``validation_poses`` random poses in the
    walking ranges, none used in the fit, give the reported errors.
    """
    model = OsimModel(path)
    names = resolve_muscles(model, muscles)
    segments, hip_centre = model.segments()
    leg = _leg_length(segments)
    if height is None:
        if generic_height is None or generic_leg_length is None:
            raise SubjectError("the person's height is needed: pass --height H (m)")
        height = generic_height * leg / generic_leg_length
    joint_range = fit_range(model)
    settings = FitSettings(joint_range=joint_range)
    crosses = crossing(model, names)
    for n, c in crosses.items():
        if not c:
            raise SubjectError(
                f"muscle '{n}' has no moment arm about hip_flexion_r, knee_angle_r or "
                "ankle_angle_r in the walking range: leave it out of --muscles"
            )
    groups: dict[tuple[str, ...], list[str]] = {}
    for n in names:
        groups.setdefault(crosses[n], []).append(n)

    check_q = _random_poses(validation_poses, seed=2392)
    check_l = model.lengths(names, check_q)
    check_r = model.opensim_moment_arms(names, check_q)
    fitted: dict[str, Muscle] = {}
    reports: dict[str, MuscleFitReport] = {}
    from tqdm import tqdm  # the opensim extra installs it; the device install has neither

    bar = tqdm(total=len(names), desc="fitting muscle paths", unit="muscle", disable=not progress)
    for joint_set, members in groups.items():
        train_q = _grid(joint_range, joint_set, model.default_q, midpoints=False)
        held_q = _grid(joint_range, joint_set, model.default_q, midpoints=True)
        train_l, train_r = model.lengths(members, train_q), model.fd_moment_arms(members, train_q)
        held_l, held_r = model.lengths(members, held_q), model.fd_moment_arms(members, held_q)
        for k, n in enumerate(members):
            path, degree, _ = fit_path(
                PathSamples(train_q, train_l[:, k], train_r[:, k]),
                PathSamples(held_q, held_l[:, k], held_r[:, k]),
                joint_set,
                settings,
            )
            i = names.index(n)
            check = PathSamples(check_q, check_l[:, i], check_r[:, i])
            reports[n] = MuscleFitReport(n, joint_set, degree, path_error(path, check))
            fitted[n] = Muscle(name=n, path=path, **model.muscle_parameters(n))
            bar.update()
    bar.close()

    subject = Subject(
        body=Body(mass=model.total_mass(), height=float(height), side="right"),
        hip_centre=hip_centre,
        segments=segments,
        joints={
            j: Joint(coordinate=COORDINATES[j], range=joint_range[k])
            for k, j in enumerate(JOINT_NAMES)
        },
        muscles=tuple(fitted[n] for n in names),
        source=f"calib-subject --osim {model.path.name}",
    )
    return ImportResult(subject, tuple(reports[n] for n in names))


def _leg_length(segments: dict[str, Segment]) -> float:
    return float(
        np.hypot(*segments["thigh"].distal_joint) + np.hypot(*segments["shank"].distal_joint)
    )


def _pair(v: np.ndarray) -> tuple[float, float]:
    return (float(v[0]), float(v[1]))


def format_report(reports: Sequence[MuscleFitReport]) -> str:
    """The per-muscle error table (mm) against OpenSim on poses not used in the fit."""
    header = f"{'muscle':<14}{'crosses':<18}{'deg':>4}"
    header += f"{'len RMS':>9}{'len max':>9}{'MA RMS':>9}{'MA max':>9}   (mm)"
    lines = [header]
    for r in reports:
        e = r.validation
        lines.append(
            f"{r.name:<14}{'+'.join(r.crosses):<18}{r.degree:>4}"
            f"{e.length_rms * 1e3:>9.3f}{e.length_max * 1e3:>9.3f}"
            f"{e.moment_arm_rms * 1e3:>9.3f}{e.moment_arm_max * 1e3:>9.3f}"
        )
    worst_l = max(r.validation.length_rms for r in reports) * 1e3
    worst_r = max(r.validation.moment_arm_rms for r in reports) * 1e3
    lines.append(
        f"worst: length RMS {worst_l:.3f} mm (target 1), moment arm RMS {worst_r:.3f} mm (target 3)"
    )
    return "\n".join(lines)
