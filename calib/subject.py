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
from calib.json_file import dumps_readable, load_json_file
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


def _fail(where: str, expected: str, got: Any) -> SubjectError:
    shown = repr(got)
    if len(shown) > 60:
        shown = shown[:57] + "..."
    return SubjectError(f"field '{where}': expected {expected}, got {shown}")


def _obj(data: Any, where: str, allowed: tuple[str, ...] | None = None) -> Mapping[str, Any]:
    """``data`` as an object; with ``allowed``, an unknown key (a typo, say) is an error."""
    if not isinstance(data, Mapping):
        raise _fail(where, "an object", data)
    if allowed is not None:
        unknown = sorted(set(data) - set(allowed))
        if unknown:
            prefix = "" if where == "<subject>" else where + "."
            raise SubjectError(
                f"field '{prefix}{unknown[0]}' is not a subject field; expected one of {list(allowed)}"
            )
    return data


def _get(data: Mapping[str, Any], key: str, where: str) -> Any:
    if key not in data:
        raise SubjectError(f"field '{where}{key}' is missing")
    return data[key]


def _number(value: Any, where: str, expected: str, lo: float | None, lo_open: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _fail(where, expected, value)
    if not math.isfinite(value):
        raise _fail(where, expected + " (finite)", value)
    if lo is not None and (value <= lo if lo_open else value < lo):
        raise _fail(where, expected, value)
    return float(value)


def _positive(data: Mapping[str, Any], key: str, where: str, unit: str) -> float:
    return _number(_get(data, key, where), where + key, f"a positive number ({unit})", 0.0, True)


def _list(value: Any, where: str, expected: str, length: int | None = None) -> Sequence[Any]:
    if not isinstance(value, (list, tuple)) or (length is not None and len(value) != length):
        raise _fail(where, expected, value)
    return value


def _finite_vector(value: Any, where: str, names: str, unit: str) -> np.ndarray:
    """A list of finite numbers, one per name in ``names`` (e.g. "x, y, z")."""
    n = len(names.split(","))
    expected = f"a list of {n} finite numbers [{names}] ({unit})"
    value = _list(value, where, expected, n)
    return np.array(
        [_number(v, f"{where}[{i}]", expected, None, False) for i, v in enumerate(value)]
    )


def _string(data: Mapping[str, Any], key: str, where: str) -> str:
    value = _get(data, key, where)
    if not isinstance(value, str) or not value:
        raise _fail(where + key, "a non-empty string", value)
    return value


def _validate(data: Any) -> None:
    data = _obj(
        data,
        "<subject>",
        ("schema_version", "source", "body", "hip_centre", "segments", "joints", "muscles"),
    )
    version = _get(data, "schema_version", "")
    if version == 1 and not isinstance(version, bool):
        raise SubjectError(
            "this is the planar three-coordinate subject format (schema_version 1), which "
            f"this calib no longer reads; rebuild it with `{REBUILD_COMMANDS[0]}` "
            f"or `{REBUILD_COMMANDS[1]}`"
        )
    if isinstance(version, bool) or version != SCHEMA_VERSION:
        raise _fail(
            "schema_version",
            f"{SCHEMA_VERSION} (this calib reads subject.json schema {SCHEMA_VERSION}; "
            "rebuild the file with calib-subject)",
            version,
        )
    if "source" in data and not isinstance(data["source"], str):
        raise _fail("source", "a string", data["source"])

    body = _obj(_get(data, "body", ""), "body", ("mass", "height", "side"))
    _positive(body, "mass", "body.", "kg")
    _positive(body, "height", "body.", "m")
    side = body.get("side", "right")
    if side not in SIDES:
        raise _fail("body.side", f"one of {list(SIDES)}", side)

    _finite_vector(_get(data, "hip_centre", ""), "hip_centre", "x, y, z", "m")

    segments = _obj(_get(data, "segments", ""), "segments")
    for name in SEGMENT_NAMES:
        seg = _obj(
            _get(segments, name, "segments."),
            f"segments.{name}",
            ("mass", "inertia", "com", "distal_joint"),
        )
        where = f"segments.{name}."
        _positive(seg, "mass", where, "kg")
        _validate_inertia(_get(seg, "inertia", where), where + "inertia")
        _finite_vector(_get(seg, "com", where), where + "com", "x, y, z", "m")
        _finite_vector(_get(seg, "distal_joint", where), where + "distal_joint", "x, y, z", "m")
    extra = sorted(set(segments) - set(SEGMENT_NAMES))
    if extra:
        raise _fail("segments", f"only {list(SEGMENT_NAMES)}", extra)

    joints = _obj(_get(data, "joints", ""), "joints")
    for name in JOINT_NAMES:
        _validate_joint(
            _obj(
                _get(joints, name, "joints."), f"joints.{name}", ("coordinates", "axes", "ranges")
            ),
            name,
        )
    extra = sorted(set(joints) - set(JOINT_NAMES))
    if extra:
        raise _fail("joints", f"only {list(JOINT_NAMES)}", extra)

    muscles = _get(data, "muscles", "")
    if not isinstance(muscles, (list, tuple)) or not muscles:
        raise _fail("muscles", "a non-empty list of muscles", muscles)
    seen: set[str] = set()
    for i, m in enumerate(muscles):
        _validate_muscle(_obj(m, f"muscles[{i}]", MUSCLE_FIELDS), i, seen)


def _validate_inertia(value: Any, where: str) -> None:
    """A 3x3 tensor: finite, symmetric, positive definite, principal moments a triangle."""
    expected = "a 3x3 list of finite numbers (kg*m^2)"
    rows = _list(value, where, expected, 3)
    tensor = np.array(
        [_finite_vector(r, f"{where}[{i}]", "x, y, z", "kg*m^2") for i, r in enumerate(rows)]
    )
    tolerance = INERTIA_RELATIVE_TOLERANCE * float(np.abs(tensor).max(initial=0.0))
    asymmetry = np.abs(tensor - tensor.T)
    if asymmetry.max() > tolerance:
        i, j = np.unravel_index(int(np.argmax(asymmetry)), asymmetry.shape)
        raise _fail(
            where,
            f"a symmetric tensor ([{i}][{j}] = [{j}][{i}])",
            [list(map(float, r)) for r in tensor],
        )
    moments = np.linalg.eigvalsh((tensor + tensor.T) / 2)
    if moments[0] <= 0.0:
        raise _fail(
            where,
            f"a positive-definite tensor (principal moments {moments.tolist()} must be > 0)",
            [list(map(float, r)) for r in tensor],
        )
    if moments[2] > moments[0] + moments[1] + tolerance:
        raise _fail(
            where,
            "principal moments satisfying the triangle inequality (the largest, "
            f"{moments[2]:.6g}, at most the sum of the others, {moments[0] + moments[1]:.6g})",
            [list(map(float, r)) for r in tensor],
        )


def _validate_joint(joint: Mapping[str, Any], name: str) -> None:
    where = f"joints.{name}."
    coordinates = list(JOINT_COORDINATES[name])
    got = _get(joint, "coordinates", where)
    if got != coordinates:
        raise _fail(
            where + "coordinates", f"{coordinates} (the {name}'s coordinates, in this order)", got
        )
    n = len(coordinates)
    axes = _list(
        _get(joint, "axes", where), where + "axes", f"a list of {n} unit vectors [x, y, z]", n
    )
    for k, axis in enumerate(axes):
        vector = _finite_vector(axis, f"{where}axes[{k}]", "x, y, z", "a unit vector")
        if abs(float(np.linalg.norm(vector)) - 1.0) > AXIS_NORM_TOLERANCE:
            raise _fail(
                f"{where}axes[{k}]",
                f"a unit vector (norm 1 within {AXIS_NORM_TOLERANCE:g}; this one's norm is "
                f"{np.linalg.norm(vector):.9g})",
                axis,
            )
    ranges = _list(
        _get(joint, "ranges", where), where + "ranges", f"a list of {n} ranges [lo, hi] (rad)", n
    )
    for k, r in enumerate(ranges):
        lo, hi = _finite_vector(r, f"{where}ranges[{k}]", "lo, hi", "rad")
        if not lo < hi:
            raise _fail(
                f"{where}ranges[{k}]", "[lo, hi] with lo < hi (rad)", [float(lo), float(hi)]
            )


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


def _validate_muscle(m: Mapping[str, Any], i: int, seen: set[str]) -> None:
    name = _string(m, "name", f"muscles[{i}].")
    if name in seen:
        raise _fail(f"muscles[{i}].name", "a name not used by another muscle", name)
    seen.add(name)
    where = f"muscles[{i}] ({name})."
    _positive(m, "max_isometric_force", where, "N")
    _positive(m, "optimal_fiber_length", where, "m")
    _positive(m, "tendon_slack_length", where, "m")
    _positive(m, "max_contraction_velocity", where, "optimal fibre lengths per second")
    pennation = _number(
        _get(m, "pennation_at_optimal", where),
        where + "pennation_at_optimal",
        "an angle in [0, pi/2) rad",
        0.0,
        False,
    )
    if pennation >= math.pi / 2:
        raise _fail(where + "pennation_at_optimal", "an angle in [0, pi/2) rad", pennation)
    if "strength_scale" in m:
        _number(m["strength_scale"], where + "strength_scale", "a number >= 0", 0.0, False)
    _validate_path(
        _obj(_get(m, "path", where), where + "path", ("crosses", "exponents", "coefficients")),
        where + "path.",
    )


def _validate_path(path: Mapping[str, Any], where: str) -> None:
    crosses = _get(path, "crosses", where)
    if (
        not isinstance(crosses, (list, tuple))
        or not crosses
        or any(c not in COORDINATES for c in crosses)
        or list(crosses) != sorted(set(crosses), key=COORDINATES.index)
    ):
        raise _fail(
            where + "crosses",
            f"a non-empty list of distinct coordinates from {list(COORDINATES)}, in that order",
            crosses,
        )
    exponents = _get(path, "exponents", where)
    coefficients = _get(path, "coefficients", where)
    row = f"[{', '.join('e_' + c for c in COORDINATES)}]"
    if not isinstance(exponents, (list, tuple)) or not exponents:
        raise _fail(where + "exponents", f"a non-empty list of {row}", exponents)
    if not isinstance(coefficients, (list, tuple)) or len(coefficients) != len(exponents):
        raise _fail(
            where + "coefficients",
            f"a list of {len(exponents)} numbers (one per exponent row)",
            coefficients,
        )
    terms = set()
    for k, e in enumerate(exponents):
        ewhere = f"{where}exponents[{k}]"
        if (
            not isinstance(e, (list, tuple))
            or len(e) != len(COORDINATES)
            or any(isinstance(x, bool) or not isinstance(x, int) or x < 0 for x in e)
        ):
            raise _fail(ewhere, f"five non-negative integers {row}", e)
        for j, coordinate in enumerate(COORDINATES):
            if e[j] and coordinate not in crosses:
                raise _fail(
                    ewhere, f"exponent 0 for '{coordinate}', which the muscle does not cross", e
                )
        if tuple(e) in terms:
            raise _fail(ewhere, "an exponent row not repeated", e)
        terms.add(tuple(e))
        _number(coefficients[k], f"{where}coefficients[{k}]", "a finite number (m)", None, False)
