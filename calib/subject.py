"""The subject: one person's planar leg model, as stored in ``subject.json``.

A ``Subject`` holds numbers only (no physics code): the body, the hip joint
centre in the pelvis frame, three rigid segments (thigh, shank, foot), three
joints named by their OpenSim coordinates, and the muscles with their Hill
parameters and muscle-tendon length polynomials.

Conventions (see docs/INTERFACES.md):
- SI units everywhere, angles in radians, OpenSim coordinates
  ``q = (hip_flexion, knee_angle, ankle_angle)`` (knee 0 straight, negative
  flexed; ankle positive in dorsiflexion).
- The planar chain has fixed joint centres at OpenSim's default pose and ideal
  hinges about z. OpenSim's gait2392 knee translates with flexion (coupled
  translations); the planar model ignores that translation for the segment
  geometry, while the muscle-tendon lengths below keep it (OpenSim evaluated
  them with the full knee).
- Segment ``com`` and ``distal_joint`` are (x, y) in metres relative to the
  segment's proximal joint centre, in ground axes at the default pose
  (x anterior, y superior). The foot's distal joint is the
  metatarsophalangeal (mtp) joint centre.
- Muscle-tendon length is a polynomial in raw radians
  ``l_mt(q) = sum_p c[p] * prod_j q_j ** e[p, j]`` whose monomials use only the
  joints the muscle crosses; moment arms are its exact negative derivative,
  r = -dl/dq (OpenSim's sign), never fitted separately.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np

from calib.json_file import load_json_file
from calib.polynomial import monomial_gradients, monomials

SCHEMA_VERSION = 1
JOINT_NAMES = ("hip", "knee", "ankle")
SEGMENT_NAMES = ("thigh", "shank", "foot")
SIDES = ("right", "left")
DEFAULT_SUBJECT_PATH = Path(__file__).resolve().parent / "data" / "default_subject.json"


class SubjectError(ValueError):
    """A subject description is invalid; the message names the field and what was expected."""


@dataclass(frozen=True)
class Body:
    """The whole person: ``mass`` (kg), standing ``height`` (m), modelled ``side`` of the leg."""

    mass: float
    height: float
    side: str = "right"


@dataclass(frozen=True)
class Segment:
    """One rigid segment of the planar chain.

    ``mass`` in kg, ``inertia`` in kg*m^2 (sagittal, about z through the centre
    of mass), ``com`` and ``distal_joint`` (x, y) in m relative to the proximal
    joint centre at the default pose.
    """

    mass: float
    inertia: float
    com: tuple[float, float]
    distal_joint: tuple[float, float]


@dataclass(frozen=True)
class Joint:
    """A hinge: the OpenSim ``coordinate`` it is and the ``range`` (lo, hi) in rad.

    The range is where the subject's muscle-path polynomials were fitted and
    are valid; callers should keep angles inside it.
    """

    coordinate: str
    range: tuple[float, float]


@dataclass(frozen=True)
class PathPolynomial:
    """Muscle-tendon length (m) as a polynomial of q in raw radians.

    ``crosses`` lists the joints (from ``JOINT_NAMES``) the muscle spans;
    ``exponents`` holds one (e_hip, e_knee, e_ankle) per term, zero for joints not
    crossed; ``coefficients`` the matching coefficients in m / rad**degree.
    """

    crosses: tuple[str, ...]
    exponents: tuple[tuple[int, int, int], ...]
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
    ``path_exponents`` (P, 3) int64 is the union monomial basis and
    ``path_coefficients`` (M, P) the coefficients in that basis:
    l_mt(q) = sum_p c[m, p] * prod_j q_j ** e[p, j].
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
    hip_centre: tuple[float, float]
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
        """The OpenSim coordinate names of (hip, knee, ankle)."""
        return tuple(self.joints[j].coordinate for j in JOINT_NAMES)

    def muscle_arrays(self) -> MuscleArrays:
        """Float64 arrays of the muscle parameters and paths (copies, safe to modify)."""
        a = self._arrays
        return MuscleArrays(*(np.array(getattr(a, f)) for f in MuscleArrays.__dataclass_fields__))

    def muscle_tendon_length(self, q: Any) -> np.ndarray:
        """Muscle-tendon lengths (..., M) in m at joint angles q (..., 3) in rad."""
        basis = monomials(_as_pose(q), self._arrays.path_exponents)
        return basis @ self._arrays.path_coefficients.T

    def moment_arms(self, q: Any) -> np.ndarray:
        """Moment arms (..., M, 3) in m at q (..., 3) rad: r = -dl_mt/dq, exactly."""
        gradients = monomial_gradients(_as_pose(q), self._arrays.path_exponents)
        return -np.einsum("...pj,mp->...mj", gradients, self._arrays.path_coefficients)

    def to_dict(self) -> dict[str, Any]:
        return _subject_to_dict(self)

    def save(self, path: str | Path) -> None:
        """Write the subject as human-readable JSON."""
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def from_dict(cls, data: Any) -> Subject:
        """Build a subject from parsed JSON; raises ``SubjectError`` naming any bad field."""
        _validate(data)
        body = data["body"]
        return cls(
            body=Body(float(body["mass"]), float(body["height"]), body.get("side", "right")),
            hip_centre=_pair(data["hip_centre"]),
            segments={
                name: Segment(
                    mass=float(s["mass"]),
                    inertia=float(s["inertia"]),
                    com=_pair(s["com"]),
                    distal_joint=_pair(s["distal_joint"]),
                )
                for name, s in ((n, data["segments"][n]) for n in SEGMENT_NAMES)
            },
            joints={
                name: Joint(coordinate=j["coordinate"], range=_pair(j["range"]))
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
    """The shipped default: generic gait2392 at its own size, the paper's ten muscles."""
    return load_subject(DEFAULT_SUBJECT_PATH)


def _as_pose(q: Any) -> np.ndarray:
    q = np.asarray(q, dtype=np.float64)
    if q.ndim == 0 or q.shape[-1] != 3:
        raise ValueError(
            f"joint angles must have shape (..., 3) = (hip_flexion, knee_angle, ankle_angle) "
            f"in rad, got shape {q.shape}"
        )
    return q


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
        path_exponents=np.array(terms, dtype=np.int64).reshape(-1, 3),
        path_coefficients=coefficients,
    )


def _pair(value: Any) -> tuple[float, float]:
    return (float(value[0]), float(value[1]))


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
            coefficients=tuple(float(c) for c in path["coefficients"]),
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
                "inertia": seg.inertia,
                "com": list(seg.com),
                "distal_joint": list(seg.distal_joint),
            }
            for name, seg in s.segments.items()
        },
        "joints": {
            name: {"coordinate": j.coordinate, "range": list(j.range)}
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


def _finite_pair(value: Any, where: str, unit: str) -> tuple[float, float]:
    expected = f"a list of two finite numbers [x, y] ({unit})"
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise _fail(where, expected, value)
    return (
        _number(value[0], where + "[0]", expected, None, False),
        _number(value[1], where + "[1]", expected, None, False),
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

    _finite_pair(_get(data, "hip_centre", ""), "hip_centre", "m")

    segments = _obj(_get(data, "segments", ""), "segments")
    for name in SEGMENT_NAMES:
        seg = _obj(
            _get(segments, name, "segments."),
            f"segments.{name}",
            ("mass", "inertia", "com", "distal_joint"),
        )
        where = f"segments.{name}."
        _positive(seg, "mass", where, "kg")
        _positive(seg, "inertia", where, "kg*m^2")
        _finite_pair(_get(seg, "com", where), where + "com", "m")
        _finite_pair(_get(seg, "distal_joint", where), where + "distal_joint", "m")
    extra = sorted(set(segments) - set(SEGMENT_NAMES))
    if extra:
        raise _fail("segments", f"only {list(SEGMENT_NAMES)}", extra)

    joints = _obj(_get(data, "joints", ""), "joints")
    for name in JOINT_NAMES:
        joint = _obj(_get(joints, name, "joints."), f"joints.{name}", ("coordinate", "range"))
        where = f"joints.{name}."
        _string(joint, "coordinate", where)
        lo, hi = _finite_pair(_get(joint, "range", where), where + "range", "rad")
        if not lo < hi:
            raise _fail(where + "range", "[lo, hi] with lo < hi (rad)", [lo, hi])
    extra = sorted(set(joints) - set(JOINT_NAMES))
    if extra:
        raise _fail("joints", f"only {list(JOINT_NAMES)}", extra)

    muscles = _get(data, "muscles", "")
    if not isinstance(muscles, (list, tuple)) or not muscles:
        raise _fail("muscles", "a non-empty list of muscles", muscles)
    seen: set[str] = set()
    for i, m in enumerate(muscles):
        _validate_muscle(_obj(m, f"muscles[{i}]", MUSCLE_FIELDS), i, seen)


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

    path = _obj(_get(m, "path", where), where + "path", ("crosses", "exponents", "coefficients"))
    pwhere = where + "path."
    crosses = _get(path, "crosses", pwhere)
    if (
        not isinstance(crosses, (list, tuple))
        or not crosses
        or any(c not in JOINT_NAMES for c in crosses)
        or len(set(crosses)) != len(crosses)
    ):
        raise _fail(
            pwhere + "crosses",
            f"a non-empty list of distinct joints from {list(JOINT_NAMES)}",
            crosses,
        )
    exponents = _get(path, "exponents", pwhere)
    coefficients = _get(path, "coefficients", pwhere)
    if not isinstance(exponents, (list, tuple)) or not exponents:
        raise _fail(pwhere + "exponents", "a non-empty list of [e_hip, e_knee, e_ankle]", exponents)
    if not isinstance(coefficients, (list, tuple)) or len(coefficients) != len(exponents):
        raise _fail(
            pwhere + "coefficients",
            f"a list of {len(exponents)} numbers (one per exponent row)",
            coefficients,
        )
    terms = set()
    for k, e in enumerate(exponents):
        ewhere = f"{pwhere}exponents[{k}]"
        if (
            not isinstance(e, (list, tuple))
            or len(e) != 3
            or any(isinstance(x, bool) or not isinstance(x, int) or x < 0 for x in e)
        ):
            raise _fail(ewhere, "three non-negative integers [e_hip, e_knee, e_ankle]", e)
        for j, joint in enumerate(JOINT_NAMES):
            if e[j] and joint not in crosses:
                raise _fail(ewhere, f"exponent 0 for '{joint}', which the muscle does not cross", e)
        if tuple(e) in terms:
            raise _fail(ewhere, "an exponent row not repeated", e)
        terms.add(tuple(e))
        _number(coefficients[k], f"{pwhere}coefficients[{k}]", "a finite number (m)", None, False)
