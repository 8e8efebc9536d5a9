"""An OpenSim model, read through the official ``opensim`` bindings, in calib's terms.

Everything is evaluated with every coordinate of the model at 0 (the default
pose: pelvis upright, joints neutral) except the five right-leg coordinates a
pose sets. What it reads:
- segments: thigh = femur_r, shank = tibia_r (+ patella_r where the model has
  one), foot = talus_r + calcn_r + toes_r joined rigidly at the default pose:
  mass, centre of mass, 3x3 inertia about the combined centre of mass (each
  body's tensor rotated into ground axes, moved by the parallel-axis theorem),
  distal joint centre; vectors relative to the proximal joint centre, in ground
  axes at the default pose;
- the hip joint centre in the pelvis frame;
- each coordinate's rotation axis, found by turning that coordinate alone by
  ``AXIS_PROBE_RAD`` from the default pose and reading the child body's
  rotation from OpenSim (so any joint type and any frame offsets are honoured),
  and a check that OpenSim's joint rotations are the intrinsic sequences of
  those axis rotations;
- muscle Hill parameters as OpenSim stores them, and muscle-tendon lengths and
  moment arms at any pose.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation
from tqdm import tqdm

from calib.coordinates import (
    COORDINATES,
    JOINT_COORDINATES,
    JOINT_NAMES,
    SEGMENT_NAMES,
    opensim_coordinate,
)
from calib.subject import Joint, Segment, SubjectError, Vector3, tensor3, vector3

FD_STEP_RAD = 1e-6
AXIS_PROBE_RAD = 1.0
# OpenSim's rotation for a coordinate turned by AXIS_PROBE_RAD must be that angle to this much
# (rad): a coordinate driving its joint through a non-identity function is refused.
AXIS_ANGLE_TOLERANCE_RAD = 1e-9
# Largest difference (rad) between OpenSim's body orientation and the product of the joints'
# axis rotations that still counts as the same rotation (numerical noise only).
JOINT_ROTATION_TOLERANCE_RAD = 1e-9
SEGMENT_BODIES = {
    "thigh": ("femur_r",),
    "shank": ("tibia_r", "patella_r"),
    "foot": ("talus_r", "calcn_r", "toes_r"),
}
REQUIRED_BODIES = ("pelvis", "femur_r", "tibia_r", "talus_r", "calcn_r", "toes_r")
# Proximal and distal joint of each segment; a joint's child body is the segment it moves.
SEGMENT_JOINTS = {
    "thigh": ("hip_r", "knee_r"),
    "shank": ("knee_r", "ankle_r"),
    "foot": ("ankle_r", "mtp_r"),
}
MODEL_JOINTS = {"hip": "hip_r", "knee": "knee_r", "ankle": "ankle_r"}


def _opensim():
    try:
        import opensim
    except ImportError as exc:
        raise SubjectError(
            "reading an .osim model needs the official OpenSim bindings: "
            "pip install 'mjca-edge[opensim]' (opensim 4.6)"
        ) from exc
    return opensim


def _matrix(rotation) -> np.ndarray:
    return np.array([[rotation.get(i, j) for j in range(3)] for i in range(3)])


def _vector(vec3) -> np.ndarray:
    return np.array([vec3.get(0), vec3.get(1), vec3.get(2)])


def axis_rotation(axes: np.ndarray, angles: np.ndarray) -> np.ndarray:
    """Rot(axes[0], angles[0]) Rot(axes[1], angles[1]) ..., a (3, 3) matrix (intrinsic sequence)."""
    out = np.eye(3)
    for axis, angle in zip(axes, angles):
        out = out @ Rotation.from_rotvec(np.asarray(axis) * angle).as_matrix()
    return out


class OsimModel:
    """A gait2392-family OpenSim model: segments, joint axes, muscle lengths and moment arms."""

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
        names = [opensim_coordinate(c) for c in COORDINATES]
        missing = [n for n in names if not coords.contains(n)]
        if missing:
            raise SubjectError(
                f"{path} has no coordinate '{missing[0]}': calib needs a gait2392-family "
                f"model with {', '.join(names)}"
            )
        self.coordinates = [coords.get(n) for n in names]
        self._all_coordinates = [coords.get(i) for i in range(coords.getSize())]
        self._muscles = self.model.getMuscles()
        bodies = self.model.getBodySet()
        joints = self.model.getJointSet()
        for needed in REQUIRED_BODIES:
            if not bodies.contains(needed):
                raise SubjectError(f"{path} has no body '{needed}' (gait2392 bodies needed)")
        for needed in ("hip_r", "knee_r", "ankle_r", "mtp_r"):
            if not joints.contains(needed):
                raise SubjectError(f"{path} has no joint '{needed}' (gait2392 joints needed)")
        self._bodies, self._joints = bodies, joints
        self.default_pose()

    # ------------------------------------------------------------ poses

    def default_pose(self) -> None:
        """Every coordinate of the model at 0."""
        for c in self._all_coordinates:
            c.setValue(self.state, 0.0, False)
        self.model.realizePosition(self.state)

    def _set_pose(self, q: np.ndarray) -> None:
        for c, value in zip(self.coordinates, q):
            c.setValue(self.state, float(value), False)
        self.model.realizePosition(self.state)

    def coordinate_range(self, coordinate: str) -> tuple[float, float]:
        """The model's own range (lo, hi) rad of one of ``COORDINATES``."""
        c = self.coordinates[COORDINATES.index(coordinate)]
        return (c.getRangeMin(), c.getRangeMax())

    def body_rotation(self, body: str, q: np.ndarray) -> np.ndarray:
        """The orientation (3, 3) of ``body`` in ground at pose q (5,) rad."""
        self._set_pose(q)
        rotation = _matrix(self._bodies.get(body).getTransformInGround(self.state).R())
        self.default_pose()
        return rotation

    # ------------------------------------------------------------ muscles

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

    def lengths(self, names: Sequence[str], q: np.ndarray) -> np.ndarray:
        """Muscle-tendon lengths (N, M) in m at poses q (N, 5) rad."""
        muscles = [self.muscle(n) for n in names]
        out = np.empty((len(q), len(muscles)))
        for i, pose in enumerate(q):
            self._set_pose(pose)
            out[i] = [m.getLength(self.state) for m in muscles]
        self.default_pose()
        return out

    def sample_paths(
        self, names: Sequence[str], q: np.ndarray, progress: bool = False, desc: str = ""
    ) -> tuple[np.ndarray, np.ndarray]:
        """Lengths (N, M) m and r = -dl/dq (N, M, 5) m by central differences of
        OpenSim's lengths (step ``FD_STEP_RAD``), at poses q (N, 5) rad."""
        muscles = [self.muscle(n) for n in names]
        length = np.empty((len(q), len(muscles)))
        arms = np.empty((len(q), len(muscles), len(COORDINATES)))

        def at(pose: np.ndarray) -> np.ndarray:
            self._set_pose(pose)
            return np.array([m.getLength(self.state) for m in muscles])

        for i, pose in enumerate(tqdm(q, desc=desc, unit="pose", disable=not progress)):
            length[i] = at(pose)
            for j in range(len(COORDINATES)):
                step = np.zeros(len(COORDINATES))
                step[j] = FD_STEP_RAD
                arms[i, :, j] = -(at(pose + step) - at(pose - step)) / (2 * FD_STEP_RAD)
        self.default_pose()
        return length, arms

    def opensim_moment_arms(
        self, names: Sequence[str], q: np.ndarray, progress: bool = False, desc: str = ""
    ) -> np.ndarray:
        """OpenSim's own moment arms (N, M, 5) in m (``Muscle.computeMomentArm``)."""
        muscles = [self.muscle(n) for n in names]
        out = np.empty((len(q), len(muscles), len(COORDINATES)))
        for i, pose in enumerate(tqdm(q, desc=desc, unit="pose", disable=not progress)):
            self._set_pose(pose)
            for k, m in enumerate(muscles):
                out[i, k] = [m.computeMomentArm(self.state, c) for c in self.coordinates]
        self.default_pose()
        return out

    def muscle_parameters(self, name: str) -> dict[str, float]:
        m = self.muscle(name)
        return {
            "max_isometric_force": m.getMaxIsometricForce(),
            "optimal_fiber_length": m.getOptimalFiberLength(),
            "tendon_slack_length": m.getTendonSlackLength(),
            "pennation_at_optimal": m.getPennationAngleAtOptimalFiberLength(),
            "max_contraction_velocity": m.getMaxContractionVelocity(),
        }

    # ------------------------------------------------------------ segments and joints

    def total_mass(self) -> float:
        return float(sum(self._bodies.get(i).getMass() for i in range(self._bodies.getSize())))

    def _joint_centre(self, joint: str) -> np.ndarray:
        """The joint's child frame origin in ground at the default pose (m)."""
        return _vector(self._joints.get(joint).getChildFrame().getPositionInGround(self.state))

    def segments(self) -> dict[str, Segment]:
        """The three segments at the default pose (see the module docstring)."""
        self.default_pose()
        segments = {}
        for name in SEGMENT_NAMES:
            proximal, distal = (self._joint_centre(j) for j in SEGMENT_JOINTS[name])
            parts = [self._bodies.get(b) for b in SEGMENT_BODIES[name] if self._bodies.contains(b)]
            masses = np.array([b.getMass() for b in parts])
            coms = np.array(
                [
                    _vector(b.findStationLocationInGround(self.state, b.getMassCenter()))
                    for b in parts
                ]
            )
            mass = float(masses.sum())
            com = (masses[:, None] * coms).sum(axis=0) / mass
            inertia = np.zeros((3, 3))
            for body, m, c in zip(parts, masses, coms):
                d = c - com
                inertia += self._inertia_in_ground(body) + m * (d @ d * np.eye(3) - np.outer(d, d))
            inertia = (inertia + inertia.T) / 2
            segments[name] = Segment(
                mass=mass,
                inertia=tensor3(inertia),
                com=vector3(com - proximal),
                distal_joint=vector3(distal - proximal),
            )
        return segments

    def _inertia_in_ground(self, body) -> np.ndarray:
        """The body's inertia tensor about its centre of mass, in ground axes (kg*m^2)."""
        moments = _vector(body.getInertia().getMoments())
        xy, xz, yz = _vector(body.getInertia().getProducts())
        tensor = np.array([[moments[0], xy, xz], [xy, moments[1], yz], [xz, yz, moments[2]]])
        rot = _matrix(body.getTransformInGround(self.state).R())
        return rot @ tensor @ rot.T

    def hip_centre(self) -> Vector3:
        """The hip joint centre (x, y, z) m in the pelvis frame."""
        self.default_pose()
        hip = self._joints.get("hip_r").getChildFrame().getPositionInGround(self.state)
        in_pelvis = self.model.getGround().findStationLocationInAnotherFrame(
            self.state, hip, self._bodies.get("pelvis")
        )
        return vector3(_vector(in_pelvis))

    def coordinate_axis(self, coordinate: str) -> Vector3:
        """The unit rotation axis of one of ``COORDINATES`` in ground axes at the default pose."""
        joint = MODEL_JOINTS[next(j for j, cs in JOINT_COORDINATES.items() if coordinate in cs)]
        child = self._joints.get(joint).getChildFrame().findBaseFrame()
        self.default_pose()
        before = _matrix(child.getTransformInGround(self.state).R())
        q = np.zeros(len(COORDINATES))
        q[COORDINATES.index(coordinate)] = AXIS_PROBE_RAD
        self._set_pose(q)
        after = _matrix(child.getTransformInGround(self.state).R())
        self.default_pose()
        rotvec = Rotation.from_matrix(after @ before.T).as_rotvec()
        angle = float(np.linalg.norm(rotvec))
        if abs(angle - AXIS_PROBE_RAD) > AXIS_ANGLE_TOLERANCE_RAD:
            raise SubjectError(
                f"{self.path}: turning {opensim_coordinate(coordinate)} by {AXIS_PROBE_RAD} rad "
                f"turns {joint} by {angle:.6g} rad; calib needs joints that rotate by their "
                "coordinates' own angles about fixed axes"
            )
        return vector3(rotvec / angle)

    def joints(self, ranges: dict[str, tuple[float, float]]) -> dict[str, Joint]:
        """Hip, knee and ankle with their axes from the model and the given ranges (rad)."""
        return {
            name: Joint(
                coordinates=coords,
                axes=tuple(self.coordinate_axis(c) for c in coords),
                ranges=tuple(ranges[c] for c in coords),
            )
            for name, coords in JOINT_COORDINATES.items()
        }

    def check_joint_rotations(self, joints: dict[str, Joint], q: np.ndarray) -> None:
        """Refuse the model unless, at every pose of q (N, 5), the femur, tibia and talus
        orientations equal the default ones turned by the joints' axis rotations."""
        chain = [
            (name, self._joints.get(MODEL_JOINTS[name]).getChildFrame().findBaseFrame())
            for name in JOINT_NAMES
        ]
        self.default_pose()
        rest = [_matrix(body.getTransformInGround(self.state).R()) for _, body in chain]
        for pose in q:
            self._set_pose(pose)
            turned = np.eye(3)
            for (name, body), r0 in zip(chain, rest):
                joint = joints[name]
                angles = [pose[COORDINATES.index(c)] for c in joint.coordinates]
                turned = turned @ axis_rotation(np.array(joint.axes), np.array(angles))
                actual = _matrix(body.getTransformInGround(self.state).R())
                error = float(
                    np.linalg.norm(Rotation.from_matrix(actual @ (turned @ r0).T).as_rotvec())
                )
                if error > JOINT_ROTATION_TOLERANCE_RAD:
                    self.default_pose()
                    raise SubjectError(
                        f"{self.path}: the {name}'s rotation is not the sequence of rotations "
                        f"about {', '.join(joint.coordinates)} (off by {error:.3g} rad at "
                        f"q = {np.round(pose, 3).tolist()} rad); calib models the hip as a "
                        "ball joint turning about flexion, then adduction, then rotation, and "
                        "knee and ankle as hinges about fixed axes"
                    )
        self.default_pose()
