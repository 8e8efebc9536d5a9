"""The subject: one person's leg over five coordinates, as stored in ``subject.json``.

A ``Subject`` holds numbers only (no physics code): the body, the hip joint
centre in the pelvis frame, three rigid segments (thigh, shank, foot), three
joints (hip a ball joint of three coordinates, knee and ankle hinges) and the
muscles with their Hill parameters and muscle-tendon length polynomials.

Conventions (see docs/INTERFACES.md):
- SI units everywhere, angles in radians; a pose q has ``COORDINATES`` =
  (hip_flexion, hip_adduction, hip_rotation, knee_angle, ankle_angle) on its
  last axis (``calib.coordinates``), with OpenSim's signs.
- Every vector and tensor is expressed in OpenSim's ground axes at the model's
  default pose (every coordinate 0, pelvis upright): x anterior, y superior,
  z to the right. The subject describes a right leg (the right hip centre has
  z > 0); a measured left leg is stored as its mirror image and ``body.side``
  says which leg was measured.
- Segment ``com`` and ``distal_joint`` are (x, y, z) in metres relative to the
  segment's proximal joint centre at the default pose; ``inertia`` is the 3x3
  tensor about the segment's centre of mass. The foot's distal joint is the
  metatarsophalangeal (mtp) joint centre. Joint centres are fixed at their
  default-pose places: gait2392's knee translates with flexion, which the
  segment geometry leaves out (the muscle lengths keep it).
- A joint's rotation is the intrinsic sequence of its coordinates' rotations,
  R = Rot(axis_1, q_1) Rot(axis_2, q_2) ..., each axis a unit vector in the
  axes above; the child segment's orientation is the parent's times R.
- Muscle-tendon length is a polynomial in raw radians
  ``l_mt(q) = sum_p c[p] * prod_j q_j ** e[p, j]`` whose monomials use only the
  coordinates the muscle crosses; moment arms are its exact negative
  derivative, r = -dl/dq (OpenSim's sign), never fitted separately.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np

from calib.coordinates import (
    COORDINATES,
    JOINT_COORDINATES,
    JOINT_NAMES,
    SEGMENT_NAMES,
    as_pose,
)
from calib.json_file import Fields, dumps_readable, load_json_file
from calib.polynomial import monomial_gradients, monomials

SCHEMA_VERSION = 2
SIDES = ("right", "left")
DEFAULT_SUBJECT_PATH = Path(__file__).resolve().parent / "data" / "default_subject.json"
REBUILD_COMMANDS = (
    "calib-subject --osim MODEL.osim -o subject.json",
    "calib-subject --height H --mass M -o subject.json",
)
# A joint axis is a unit vector to within this much (its norm, dimensionless).
AXIS_NORM_TOLERANCE = 1e-6
# Inertia symmetry and the principal-moment triangle inequality hold to within this
# fraction of the tensor's largest entry (rounding of the numbers in a file).
INERTIA_RELATIVE_TOLERANCE = 1e-9

Vector3 = tuple[float, float, float]
Tensor3 = tuple[Vector3, Vector3, Vector3]


class SubjectError(ValueError):
    """A subject description is invalid; the message names the field and what was expected."""


@dataclass(frozen=True)
class Body:
    """The whole person: ``mass`` (kg), standing ``height`` (m), measured ``side`` of the leg."""

    mass: float
    height: float
    side: str = "right"


@dataclass(frozen=True)
class Segment:
    """One rigid segment of the leg.

    ``mass`` in kg; ``inertia`` the 3x3 tensor in kg*m^2 about the centre of
    mass; ``com`` and ``distal_joint`` (x, y, z) in m relative to the proximal
    joint centre at the default pose (see the module docstring for the axes).
    """

    mass: float
    inertia: Tensor3
    com: Vector3
    distal_joint: Vector3


@dataclass(frozen=True)
class Joint:
    """A joint: its ``coordinates`` (in ``COORDINATES`` order), each one's unit rotation
    axis in ``axes`` and the range (lo, hi) rad in ``ranges`` where the subject's
    muscle-path polynomials were fitted and are valid.

    The joint's rotation is Rot(axes[0], q[0]) Rot(axes[1], q[1]) ... (intrinsic).
    """

    coordinates: tuple[str, ...]
    axes: tuple[Vector3, ...]
    ranges: tuple[tuple[float, float], ...]


@dataclass(frozen=True)
class PathPolynomial:
    """Muscle-tendon length (m) as a polynomial of q in raw radians.

    ``crosses`` lists the coordinates (from ``COORDINATES``, in that order) the
    muscle spans; ``exponents`` holds one row of five exponents per term, in
    ``COORDINATES`` order, zero for coordinates not crossed; ``coefficients``
    the matching coefficients in m / rad**degree.
    """

    crosses: tuple[str, ...]
    exponents: tuple[tuple[int, ...], ...]
    coefficients: tuple[float, ...]

    def scaled(self, factor: float) -> PathPolynomial:
        """The same path with every length multiplied by ``factor``."""
        return PathPolynomial(
            self.crosses, self.exponents, tuple(c * factor for c in self.coefficients)
        )


@dataclass(frozen=True)
class Muscle:
    """Hill-type muscle parameters (Thelen 2003 in OpenSim) and its path.

    ``max_isometric_force`` N, ``optimal_fiber_length`` m, ``tendon_slack_length`` m,
    ``pennation_at_optimal`` rad, ``max_contraction_velocity`` in optimal fibre
    lengths per second, ``strength_scale`` (1 = as modelled) multiplies the force.
    """

    name: str
    max_isometric_force: float
    optimal_fiber_length: float
    tendon_slack_length: float
    pennation_at_optimal: float
    max_contraction_velocity: float
    path: PathPolynomial
    strength_scale: float = 1.0


@dataclass(frozen=True)
class MuscleArrays:
    """Muscle parameters as float64 arrays, what the torch and Numba physics evaluate.

    ``max_isometric_force`` (M,) N already multiplied by the strength scale;
    ``path_exponents`` (P, 5) int64 is the union monomial basis (columns in
    ``COORDINATES`` order) and ``path_coefficients`` (M, P) the coefficients in
    that basis: l_mt(q) = sum_p c[m, p] * prod_j q_j ** e[p, j].
    """

    max_isometric_force: np.ndarray
    optimal_fiber_length: np.ndarray
    tendon_slack_length: np.ndarray
    pennation_at_optimal: np.ndarray
    max_contraction_velocity: np.ndarray
    path_exponents: np.ndarray
    path_coefficients: np.ndarray


@dataclass(frozen=True)
class Subject:
    """One person's leg: see the module docstring for the conventions."""

    body: Body
    hip_centre: Vector3
    segments: Mapping[str, Segment]
    joints: Mapping[str, Joint]
    muscles: tuple[Muscle, ...]
    source: str = ""
    schema_version: int = SCHEMA_VERSION
    _arrays: MuscleArrays = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "segments", MappingProxyType(dict(self.segments)))
        object.__setattr__(self, "joints", MappingProxyType(dict(self.joints)))
        object.__setattr__(self, "muscles", tuple(self.muscles))
        _validate(_subject_to_dict(self))
        object.__setattr__(self, "_arrays", _build_arrays(self.muscles))

    @property
    def muscle_names(self) -> tuple[str, ...]:
        return tuple(m.name for m in self.muscles)

    @property
    def coordinates(self) -> tuple[str, ...]:
        """The names of q's last axis: ``calib.coordinates.COORDINATES``."""
        return COORDINATES

    @property
    def coordinate_ranges(self) -> np.ndarray:
        """(5, 2) rad: each coordinate's valid range (lo, hi), in ``COORDINATES`` order."""
        ranges = {c: r for j in self.joints.values() for c, r in zip(j.coordinates, j.ranges)}
        return np.array([ranges[c] for c in COORDINATES], dtype=np.float64)

    def muscle_arrays(self) -> MuscleArrays:
        """Float64 arrays of the muscle parameters and paths (copies, safe to modify)."""
        a = self._arrays
        return MuscleArrays(*(np.array(getattr(a, f)) for f in MuscleArrays.__dataclass_fields__))

    def muscle_tendon_length(self, q: Any) -> np.ndarray:
        """Muscle-tendon lengths (..., M) in m at poses q (..., 5) in rad."""
        basis = monomials(as_pose(q), self._arrays.path_exponents)
        return basis @ self._arrays.path_coefficients.T

    def moment_arms(self, q: Any) -> np.ndarray:
        """Moment arms (..., M, 5) in m at q (..., 5) rad: r = -dl_mt/dq, exactly."""
        gradients = monomial_gradients(as_pose(q), self._arrays.path_exponents)
        return -np.einsum("...pj,mp->...mj", gradients, self._arrays.path_coefficients)

    def to_dict(self) -> dict[str, Any]:
        return _subject_to_dict(self)

    def save(self, path: str | Path) -> None:
        """Write the subject as human-readable JSON."""
        Path(path).write_text(dumps_readable(self.to_dict()))

    @classmethod
    def from_dict(cls, data: Any) -> Subject:
        """Build a subject from parsed JSON; raises ``SubjectError`` naming any bad field."""
        _validate(data)
        body = data["body"]
        return cls(
            body=Body(float(body["mass"]), float(body["height"]), body.get("side", "right")),
            hip_centre=vector3(data["hip_centre"]),
            segments={
                name: Segment(
                    mass=float(s["mass"]),
                    inertia=tensor3(s["inertia"]),
                    com=vector3(s["com"]),
                    distal_joint=vector3(s["distal_joint"]),
                )
                for name, s in ((n, data["segments"][n]) for n in SEGMENT_NAMES)
            },
            joints={
                name: Joint(
                    coordinates=tuple(j["coordinates"]),
                    axes=tuple(vector3(a) for a in j["axes"]),
                    ranges=tuple(_pair(r) for r in j["ranges"]),
                )
                for name, j in ((n, data["joints"][n]) for n in JOINT_NAMES)
            },
            muscles=tuple(_muscle_from_dict(m) for m in data["muscles"]),
            source=data.get("source", ""),
            schema_version=int(data["schema_version"]),
        )


def load_subject(path: str | Path) -> Subject:
    """Read and validate a ``subject.json``."""
    return load_json_file(path, Subject.from_dict, SubjectError, "subject")


def default_subject() -> Subject:
    """The shipped default: generic gait2392 at its own size, every leg muscle (43)."""
    return load_subject(DEFAULT_SUBJECT_PATH)


def _build_arrays(muscles: tuple[Muscle, ...]) -> MuscleArrays:
    terms = sorted(
        {e for m in muscles for e in m.path.exponents}, key=lambda e: (sum(e), tuple(-x for x in e))
    )
    index = {e: i for i, e in enumerate(terms)}
    coefficients = np.zeros((len(muscles), len(terms)))
    for i, m in enumerate(muscles):
        for e, c in zip(m.path.exponents, m.path.coefficients):
            coefficients[i, index[e]] += c
    return MuscleArrays(
        max_isometric_force=np.array(
            [m.max_isometric_force * m.strength_scale for m in muscles], dtype=np.float64
        ),
        optimal_fiber_length=np.array([m.optimal_fiber_length for m in muscles], np.float64),
        tendon_slack_length=np.array([m.tendon_slack_length for m in muscles], np.float64),
        pennation_at_optimal=np.array([m.pennation_at_optimal for m in muscles], np.float64),
        max_contraction_velocity=np.array(
            [m.max_contraction_velocity for m in muscles], np.float64
        ),
        path_exponents=np.array(terms, dtype=np.int64).reshape(-1, len(COORDINATES)),
        path_coefficients=coefficients,
    )


def _floats(values: Sequence[Any]) -> tuple[float, ...]:
    return tuple(float(v) for v in values)


def vector3(values: Iterable[Any]) -> Vector3:
    """Exactly three numbers as a ``Vector3`` of floats (ValueError for any other count)."""
    x, y, z = (float(v) for v in values)
    return (x, y, z)


def tensor3(rows: Iterable[Iterable[Any]]) -> Tensor3:
    """A 3x3 array (rows of three numbers) as a ``Tensor3`` of floats."""
    first, second, third = (vector3(row) for row in rows)
    return (first, second, third)


def _pair(values: Iterable[Any]) -> tuple[float, float]:
    lo, hi = (float(v) for v in values)
    return (lo, hi)


def _muscle_from_dict(m: Mapping[str, Any]) -> Muscle:
    path = m["path"]
    return Muscle(
        name=m["name"],
        max_isometric_force=float(m["max_isometric_force"]),
        optimal_fiber_length=float(m["optimal_fiber_length"]),
        tendon_slack_length=float(m["tendon_slack_length"]),
        pennation_at_optimal=float(m["pennation_at_optimal"]),
        max_contraction_velocity=float(m["max_contraction_velocity"]),
        strength_scale=float(m.get("strength_scale", 1.0)),
        path=PathPolynomial(
            crosses=tuple(path["crosses"]),
            exponents=tuple(tuple(int(x) for x in e) for e in path["exponents"]),
            coefficients=_floats(path["coefficients"]),
        ),
    )


def _subject_to_dict(s: Subject) -> dict[str, Any]:
    return {
        "schema_version": s.schema_version,
        "source": s.source,
        "body": {"mass": s.body.mass, "height": s.body.height, "side": s.body.side},
        "hip_centre": list(s.hip_centre),
        "segments": {
            name: {
                "mass": seg.mass,
                "inertia": [list(row) for row in seg.inertia],
                "com": list(seg.com),
                "distal_joint": list(seg.distal_joint),
            }
            for name, seg in s.segments.items()
        },
        "joints": {
            name: {
                "coordinates": list(j.coordinates),
                "axes": [list(a) for a in j.axes],
                "ranges": [list(r) for r in j.ranges],
            }
            for name, j in s.joints.items()
        },
        "muscles": [
            {
                "name": m.name,
                "max_isometric_force": m.max_isometric_force,
                "optimal_fiber_length": m.optimal_fiber_length,
                "tendon_slack_length": m.tendon_slack_length,
                "pennation_at_optimal": m.pennation_at_optimal,
                "max_contraction_velocity": m.max_contraction_velocity,
                "strength_scale": m.strength_scale,
                "path": {
                    "crosses": list(m.path.crosses),
                    "exponents": [[int(x) for x in e] for e in m.path.exponents],
                    "coefficients": list(m.path.coefficients),
                },
            }
            for m in s.muscles
        ],
    }


# ---------------------------------------------------------------- validation

SUBJECT_FIELDS = ("schema_version", "source", "body", "hip_centre", "segments", "joints", "muscles")
XYZ = "x, y, z"
MUSCLE_FIELDS = (
    "name",
    "max_isometric_force",
    "optimal_fiber_length",
    "tendon_slack_length",
    "pennation_at_optimal",
    "max_contraction_velocity",
    "strength_scale",
    "path",
)


def _validate(data: Any) -> None:
    if not isinstance(data, Mapping):
        raise Fields({}, SubjectError, "<subject>").fail(None, "a JSON object", data)
    subject = Fields(data, SubjectError)
    subject.only(SUBJECT_FIELDS, "subject")
    version = subject.value("schema_version")
    if version == 1 and not isinstance(version, bool):
        raise SubjectError(
            "this is the planar three-coordinate subject format (schema_version 1), which "
            f"this calib no longer reads; rebuild it with `{REBUILD_COMMANDS[0]}` "
            f"or `{REBUILD_COMMANDS[1]}`"
        )
    if isinstance(version, bool) or version != SCHEMA_VERSION:
        raise subject.fail(
            "schema_version",
            f"{SCHEMA_VERSION} (this calib reads subject.json schema {SCHEMA_VERSION}; "
            "rebuild the file with calib-subject)",
            version,
        )
    if "source" in subject and not isinstance(data["source"], str):
        raise subject.fail("source", "a string", data["source"])

    body = subject.mapping("body", allowed=("mass", "height", "side"), kind="subject")
    body.number("mass", unit="kg", positive=True)
    body.number("height", unit="m", positive=True)
    if "side" in body:
        body.string("side", choices=SIDES)

    subject.vector("hip_centre", 3, components=XYZ, unit="m")

    segments = subject.mapping("segments")
    for name in SEGMENT_NAMES:
        seg = segments.mapping(
            name, allowed=("mass", "inertia", "com", "distal_joint"), kind="subject"
        )
        seg.number("mass", unit="kg", positive=True)
        _validate_inertia(seg)
        seg.vector("com", 3, components=XYZ, unit="m")
        seg.vector("distal_joint", 3, components=XYZ, unit="m")
    extra = sorted(set(data["segments"]) - set(SEGMENT_NAMES))
    if extra:
        raise subject.fail("segments", f"only {list(SEGMENT_NAMES)}", extra)

    joints = subject.mapping("joints")
    for name in JOINT_NAMES:
        _validate_joint(
            joints.mapping(name, allowed=("coordinates", "axes", "ranges"), kind="subject"), name
        )
    extra = sorted(set(data["joints"]) - set(JOINT_NAMES))
    if extra:
        raise subject.fail("joints", f"only {list(JOINT_NAMES)}", extra)

    muscles = subject.sequence("muscles", "a non-empty list of muscles", non_empty=True)
    seen: set[str] = set()
    for i in range(len(muscles)):
        _validate_muscle(muscles.mapping(i, allowed=MUSCLE_FIELDS, kind="subject"), seen)


def _validate_inertia(segment: Fields) -> None:
    """A 3x3 tensor: finite, symmetric, positive definite, principal moments a triangle."""
    rows = segment.sequence("inertia", "a 3x3 list of finite numbers (kg*m^2)", length=3)
    tensor = np.array([rows.vector(i, 3, components=XYZ, unit="kg*m^2") for i in range(3)])
    shown = [list(map(float, r)) for r in tensor]
    tolerance = INERTIA_RELATIVE_TOLERANCE * float(np.abs(tensor).max(initial=0.0))
    asymmetry = np.abs(tensor - tensor.T)
    if asymmetry.max() > tolerance:
        i, j = np.unravel_index(int(np.argmax(asymmetry)), asymmetry.shape)
        raise segment.fail("inertia", f"a symmetric tensor ([{i}][{j}] = [{j}][{i}])", shown)
    moments = np.linalg.eigvalsh((tensor + tensor.T) / 2)
    if moments[0] <= 0.0:
        raise segment.fail(
            "inertia",
            f"a positive-definite tensor (principal moments {moments.tolist()} must be > 0)",
            shown,
        )
    if moments[2] > moments[0] + moments[1] + tolerance:
        raise segment.fail(
            "inertia",
            "principal moments satisfying the triangle inequality (the largest, "
            f"{moments[2]:.6g}, at most the sum of the others, {moments[0] + moments[1]:.6g})",
            shown,
        )


def _validate_joint(joint: Fields, name: str) -> None:
    coordinates = list(JOINT_COORDINATES[name])
    got = joint.value("coordinates")
    if got != coordinates:
        raise joint.fail(
            "coordinates", f"{coordinates} (the {name}'s coordinates, in this order)", got
        )
    n = len(coordinates)
    axes = joint.sequence("axes", f"a list of {n} unit vectors [x, y, z]", length=n)
    for k in range(n):
        norm = float(np.linalg.norm(axes.vector(k, 3, components=XYZ, unit="a unit vector")))
        if abs(norm - 1.0) > AXIS_NORM_TOLERANCE:
            raise axes.fail(
                k,
                f"a unit vector (norm 1 within {AXIS_NORM_TOLERANCE:g}; this one's norm is "
                f"{norm:.9g})",
                axes.value(k),
            )
    ranges = joint.sequence("ranges", f"a list of {n} ranges [lo, hi] (rad)", length=n)
    for k in range(n):
        lo, hi = ranges.vector(k, 2, components="lo, hi", unit="rad")
        if not lo < hi:
            raise ranges.fail(k, "[lo, hi] with lo < hi (rad)", [lo, hi])


def _validate_muscle(muscle: Fields, seen: set[str]) -> None:
    name = muscle.string("name")
    if name in seen:
        raise muscle.fail("name", "a name not used by another muscle", name)
    seen.add(name)
    muscle = muscle.labelled(name)
    muscle.number("max_isometric_force", unit="N", positive=True)
    muscle.number("optimal_fiber_length", unit="m", positive=True)
    muscle.number("tendon_slack_length", unit="m", positive=True)
    muscle.number(
        "max_contraction_velocity", unit="optimal fibre lengths per second", positive=True
    )
    muscle.number(
        "pennation_at_optimal", "an angle in [0, pi/2) rad", at_least=0.0, below=math.pi / 2
    )
    if "strength_scale" in muscle:
        muscle.number("strength_scale", at_least=0.0)
    _validate_path(
        muscle.mapping("path", allowed=("crosses", "exponents", "coefficients"), kind="subject")
    )


def _validate_path(path: Fields) -> None:
    crosses = path.value("crosses")
    if (
        not isinstance(crosses, (list, tuple))
        or not crosses
        or any(c not in COORDINATES for c in crosses)
        or list(crosses) != sorted(set(crosses), key=COORDINATES.index)
    ):
        raise path.fail(
            "crosses",
            f"a non-empty list of distinct coordinates from {list(COORDINATES)}, in that order",
            crosses,
        )
    row = f"[{', '.join('e_' + c for c in COORDINATES)}]"
    exponents = path.sequence("exponents", f"a non-empty list of {row}", non_empty=True)
    n = len(exponents)
    coefficients = path.sequence(
        "coefficients", f"a list of {n} numbers (one per exponent row)", length=n
    )
    terms = set()
    for k in range(n):
        e = exponents.value(k)
        if (
            not isinstance(e, (list, tuple))
            or len(e) != len(COORDINATES)
            or any(isinstance(x, bool) or not isinstance(x, int) or x < 0 for x in e)
        ):
            raise exponents.fail(k, f"five non-negative integers {row}", e)
        for j, coordinate in enumerate(COORDINATES):
            if e[j] and coordinate not in crosses:
                raise exponents.fail(
                    k, f"exponent 0 for '{coordinate}', which the muscle does not cross", e
                )
        if tuple(e) in terms:
            raise exponents.fail(k, "an exponent row not repeated", e)
        terms.add(tuple(e))
        coefficients.number(k, unit="m")
