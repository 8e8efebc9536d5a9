"""Label-free training sets beyond one recorded trial.

One walking trial is little to train on. Without labels, a new trial only has
to be a plausible movement with consistent loads: the physics loss then asks
the network for the muscle activations that balance it. ``augment_trials``
makes such trials from the recorded ones (``train.trial.LegTrial``: five leg
coordinates below a moving pelvis, the foot's 3-D ground reaction, centre of
pressure and free moment), deterministically for a seed:

1. **Both legs.** Load both (``train.trial.load_both_legs``): the left leg is
   mirrored into the right leg's world, so it is a second sample of the same
   model. Pass both here: their vertical forces give each foot's share of body
   weight (below).
2. **Cycle splicing.** Each leg's trial is cut at its heel strikes into whole
   gait cycles; a variant strings ``cycles_per_variant`` cycles drawn with
   replacement. The five leg coordinates and the pelvis's tilt, list,
   rotation and height (``pelvis_ty``) are made exactly periodic per cycle
   (the end-to-start drift is removed linearly over the cycle) and shifted to
   the cycles' mean heel-strike value, so the joins are continuous in value
   and (to the gait's own periodicity) in rate. The pelvis's horizontal
   position (``pelvis_tx``, ``pelvis_tz``) keeps each cycle's own travel and
   each cycle starts where the previous one ended: overground, where the
   pelvis progresses by a stride per cycle, the position stays continuous and
   the progression goes on; on a treadmill, where it stays near the belt's
   middle, the travel per cycle is a few millimetres and so is the drift. A
   leg without a whole cycle is varied as one piece, without splicing.
3. **Speed.** Time is warped by a cadence factor s (log-uniform in
   ``speed_range``, with ``cycle_speed_jitter`` of cycle-to-cycle variation,
   smooth between cycles): a cycle of duration T lasts T / s. Every
   coordinate's velocity, the pelvis's included, then scales with s and its
   acceleration with s², as the physics sees them; the pelvis's progression
   speed (overground) or the belt's speed (the stance foot's backward travel
   on a treadmill) scales with s, the stride length is kept. The ground
   reaction force's vertical part is split into the foot's share of body
   weight S = σ m g (σ = this foot's vertical force over both feet's; with one
   leg only, S = min(F_y, m g)) and a dynamic part F_y − S, the part that
   accelerates the body's centre of mass. Warping the movement's shape in time
   scales the centre of mass's acceleration by s², so the vertical force
   becomes S + s² (F_y − S) (kept ≥ 0). The force keeps its direction: the
   whole 3-D vector is scaled by that ratio, because in walking the ground
   reaction points at nearly the same place above the hips at every instant
   (its lines of action meet near a point above the centre of mass), and a
   warp keeps the geometry. Scaling F_x by s² as well (a treadmill's
   horizontal force is all dynamic) would tilt the force away from that point
   and swing the hip torque by ~25 N·m at s = 0.8 — a posture-force
   combination no real slow walk has; the price of keeping the direction is
   that the horizontal force does not follow the centre of mass's s² exactly.
   The free moment (the vertical couple) is scaled by the same ratio: it is
   the friction's twist under the same load.

   What a warp cannot represent: a person walking faster takes longer steps
   (a warp keeps stride length and changes cadence only), swings the joints
   further, spends a smaller fraction of the cycle in stance and loads the
   heel harder at impact (an impact transient is not an s² effect). Speeds
   far from the recorded one are therefore less realistic than the factor
   suggests: keep ``speed_range`` moderate (0.8–1.25 by default).
4. **Amplitude and offset.** Each measured leg coordinate's excursion about
   its mean is scaled by a factor in ``amplitude_range`` (with
   ``cycle_amplitude_jitter`` per cycle, smooth) and offset by up to
   ``offset_rad`` (±2° by default, the size of a sensor's zero error or a
   person's postural difference); a coordinate the trial did not measure stays
   0. Hip adduction and rotation get the same ranges as the sagittal three:
   the amplitude is a relative factor (±10 % of their 10–20° walking
   excursions is 1–2°, well inside the differences between people), and an
   offset of the frontal or transverse hip is a change of posture (a wider
   stance, a toe-out) that the loads below follow; larger offsets there would
   add demands that a network given only the sagittal angles (the default
   input) cannot see. The pelvis keeps its (spliced, warped) motion.
   The centre of pressure moves rigidly with the foot: it keeps its place in
   the foot's frame (``train.dynamics3d.leg_kinematics`` places the foot from
   the pelvis and the five coordinates), so the ground force keeps acting
   where the foot is; it may then sit slightly above or below the recorded
   floor. The force keeps its magnitude (the body's weight must be carried
   whatever the joint excursion) and turns with the hip-to-COP line (the
   smallest rotation taking the recorded line onto the new one), because the
   ground reaction points roughly at the body's centre of mass, near the hips:
   its moment about the hip keeps its size relative to the lever and its
   orientation relative to the line, and the knee and ankle see the lever arms
   of the new posture. Without that turn 2° of hip offset would move the foot
   3 cm under a fixed force line and add ~20 N·m of hip torque that no real
   posture change would bring. The free moment stays vertical.

Variants start at time 0, carry their source's ``measured`` and name what was
done in ``LegTrial.variant``.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, fields

import numpy as np
from scipy.interpolate import CubicSpline, PchipInterpolator

from calib.coordinates import COORDINATES
from train.dynamics3d import GRAVITY, LegModel, leg_kinematics
from train.trial import LegTrial, TrialError

__all__ = ["AugmentConfig", "augment_trials", "static_support"]

_ANKLE = 2  # index of the ankle among LegKinematics.joint_centre
_FOOT = 2  # index of the foot among LegKinematics.orientation
_TRAVEL = (3, 5)  # pelvis_tx, pelvis_tz: horizontal positions, continued across joins
_PERIODIC_PELVIS = (0, 1, 2, 4)  # tilt, list, rotation, ty: made periodic per cycle


@dataclass(frozen=True)
class AugmentConfig:
    """How far variants stray from the recorded cycles (factors are relative, angles in rad).

    Amplitude and offset apply alike to each of the five leg coordinates (see the module docstring).
    """

    speed_range: tuple[float, float] = (0.8, 1.25)
    amplitude_range: tuple[float, float] = (0.9, 1.1)
    offset_rad: float = math.radians(2.0)
    cycles_per_variant: int = 4
    cycle_speed_jitter: float = 0.03
    cycle_amplitude_jitter: float = 0.03

    def __post_init__(self) -> None:
        lo, hi = self.speed_range
        if not 0 < lo <= hi:
            raise TrialError(f"speed_range must satisfy 0 < low <= high, got {self.speed_range}")
        lo, hi = self.amplitude_range
        if not 0 < lo <= hi:
            raise TrialError(
                f"amplitude_range must satisfy 0 < low <= high, got {self.amplitude_range}"
            )
        if self.offset_rad < 0 or self.cycle_speed_jitter < 0 or self.cycle_amplitude_jitter < 0:
            raise TrialError("offset_rad and the jitters must be >= 0")
        if self.cycles_per_variant < 1:
            raise TrialError(f"cycles_per_variant must be >= 1, got {self.cycles_per_variant}")


def augment_trials(
    trials: list[LegTrial],
    n_variants: int,
    seed: int,
    subject,
    config: AugmentConfig | None = None,
) -> list[LegTrial]:
    """``n_variants`` new trials per given trial (the given ones are not repeated).

    ``subject`` (a five-coordinate ``calib.Subject``) gives body mass (weight
    share) and the leg (``LegModel.from_subject``: where the foot is, which the
    centre of pressure follows). Trials loaded from the same files at the same
    times are taken as the two legs of one recording. The same ``seed`` gives
    the same variants.
    """
    config = config or AugmentConfig()
    if n_variants < 0:
        raise TrialError(f"n_variants must be >= 0, got {n_variants}")
    if n_variants == 0 or not trials:
        return []
    model = LegModel.from_subject(subject)
    supports = [
        static_support(trial, _sibling(trial, trials), subject.body.mass) for trial in trials
    ]
    variants = []
    for index, (trial, support) in enumerate(zip(trials, supports)):
        pieces = _cycles(trial)
        for number in range(n_variants):
            rng = np.random.default_rng((seed, index, number))
            variants.append(_variant(trial, support, pieces, model, rng, config, number))
    return variants


def static_support(trial: LegTrial, sibling: LegTrial | None, body_mass_kg: float) -> np.ndarray:
    """The foot's share of body weight (N,) N: σ m g, σ its vertical force over both feet's.

    Without the other leg, min(F_y, m g): the part above body weight is dynamic.
    """
    weight = body_mass_kg * -GRAVITY[1]
    own = trial.force[:, 1]
    if sibling is None:
        return np.minimum(own, weight)
    total = own + sibling.force[:, 1]
    share = np.divide(own, total, out=np.zeros_like(own), where=total > 0)
    return share * weight


def _sibling(trial: LegTrial, trials: list[LegTrial]) -> LegTrial | None:
    for other in trials:
        if (
            other is not trial
            and other.side != trial.side
            and other.source == trial.source
            and other.n_samples == trial.n_samples
            and np.array_equal(other.time, trial.time)
        ):
            return other
    return None


def _cycles(trial: LegTrial) -> list[tuple[int, int]]:
    """[start, end] sample indices (inclusive) of whole cycles, heel strike to the next
    heel strike."""
    strikes = np.flatnonzero(np.diff(trial.contact.astype(np.int8)) == 1) + 1
    return [(int(a), int(b)) for a, b in itertools.pairwise(strikes)]


@dataclass(frozen=True)
class _Source:
    """A spliced sequence at the trial's rate, before warping. ``q`` and ``pelvis`` are the
    joined (periodic, continued) motion, ``q_recorded`` and ``pelvis_recorded`` the recorded
    pose of the same samples (where the centre of pressure was measured); ``knots`` are
    each piece's mid-sample."""

    q: np.ndarray
    q_recorded: np.ndarray
    pelvis: np.ndarray
    pelvis_recorded: np.ndarray
    force: np.ndarray
    cop: np.ndarray
    free_moment: np.ndarray
    contact: np.ndarray
    support: np.ndarray
    knots: np.ndarray


_RECORDED = ("force", "cop", "free_moment", "contact")


def _splice(
    trial: LegTrial, support: np.ndarray, pieces: list[tuple[int, int]], order: list[int]
) -> _Source:
    """Chosen cycles end to end: periodic coordinates start at the mean heel-strike value,
    horizontal pelvis positions continue from where the previous cycle ended."""
    start_q = np.mean([trial.q[a] for a, _ in pieces], axis=0)
    start_pelvis = np.mean([trial.pelvis[a] for a, _ in pieces], axis=0)
    periodic = list(_PERIODIC_PELVIS)
    travel = list(_TRAVEL)
    parts: dict[str, list[np.ndarray]] = {f.name: [] for f in fields(_Source) if f.name != "knots"}
    knots, offset = [], 0
    position = start_pelvis[travel]
    for choice in order:
        a, b = pieces[choice]
        n = b - a
        ramp = (np.arange(n) / n)[:, None]
        parts["q"].append(trial.q[a:b] - ramp * (trial.q[b] - trial.q[a]) + (start_q - trial.q[a]))
        pelvis = trial.pelvis[a:b].copy()
        pelvis[:, periodic] += -ramp * (trial.pelvis[b, periodic] - trial.pelvis[a, periodic]) + (
            start_pelvis[periodic] - trial.pelvis[a, periodic]
        )
        pelvis[:, travel] += position - trial.pelvis[a, travel]
        position = position + trial.pelvis[b, travel] - trial.pelvis[a, travel]
        parts["pelvis"].append(pelvis)
        parts["q_recorded"].append(trial.q[a:b])
        parts["pelvis_recorded"].append(trial.pelvis[a:b])
        for name in _RECORDED:
            parts[name].append(getattr(trial, name)[a:b])
        parts["support"].append(support[a:b])
        knots.append(offset + 0.5 * n)
        offset += n
    # close the sequence with the first sample of a following cycle
    closing = start_pelvis.copy()
    closing[travel] = position
    parts["q"].append(start_q[None, :])
    parts["pelvis"].append(closing[None, :])
    a, _ = pieces[order[0]]
    parts["q_recorded"].append(trial.q[a : a + 1])
    parts["pelvis_recorded"].append(trial.pelvis[a : a + 1])
    for name in _RECORDED:
        parts[name].append(getattr(trial, name)[a : a + 1])
    parts["support"].append(support[a : a + 1])
    return _Source(**{k: np.concatenate(v) for k, v in parts.items()}, knots=np.asarray(knots))


def _whole(trial: LegTrial, support: np.ndarray) -> _Source:
    return _Source(
        q=trial.q,
        q_recorded=trial.q,
        pelvis=trial.pelvis,
        pelvis_recorded=trial.pelvis,
        force=trial.force,
        cop=trial.cop,
        free_moment=trial.free_moment,
        contact=trial.contact,
        support=support,
        knots=np.array([0.5 * (trial.n_samples - 1)]),
    )


def _smooth_profile(knots: np.ndarray, values: np.ndarray, at: np.ndarray) -> np.ndarray:
    """Values at the pieces' mid-samples, joined smoothly (PCHIP: no overshoot), held beyond."""
    if knots.size == 1:
        return np.broadcast_to(values[0], (at.size, *values.shape[1:])).copy()
    clipped = np.clip(at, knots[0], knots[-1])
    return PchipInterpolator(knots, values, axis=0)(clipped)


def _variant(
    trial: LegTrial,
    support: np.ndarray,
    pieces: list[tuple[int, int]],
    model: LegModel,
    rng: np.random.Generator,
    config: AugmentConfig,
    number: int,
) -> LegTrial:
    if pieces:
        order = [int(i) for i in rng.integers(len(pieces), size=config.cycles_per_variant)]
        source = _splice(trial, support, pieces, order)
    else:
        order = []
        source = _whole(trial, support)
    n_pieces = source.knots.size
    n_q = len(COORDINATES)
    lo, hi = np.log(config.speed_range)
    speed_base = float(np.exp(rng.uniform(lo, hi)))
    speeds = np.clip(
        speed_base * np.exp(config.cycle_speed_jitter * rng.standard_normal(n_pieces)),
        *config.speed_range,
    )
    lo, hi = np.log(config.amplitude_range)
    amplitude_base = np.exp(rng.uniform(lo, hi, size=n_q))
    amplitudes = amplitude_base * np.exp(
        config.cycle_amplitude_jitter * rng.standard_normal((n_pieces, n_q))
    )
    offsets = rng.uniform(-config.offset_rad, config.offset_rad, size=n_q)
    # a coordinate the files did not hold stays 0
    varied = np.array([name in trial.measured for name in COORDINATES])
    amplitude_base = np.where(varied, amplitude_base, 1.0)
    amplitudes = np.where(varied, amplitudes, 1.0)
    offsets = np.where(varied, offsets, 0.0)

    # the new motion and loads at the spliced source samples u, where the recorded pose under
    # each measured centre of pressure is exact (a join between cycles lies between samples)
    u = np.arange(source.q.shape[0], dtype=np.float64)
    mean_posture = source.q.mean(axis=0)
    q = (
        mean_posture
        + _smooth_profile(source.knots, amplitudes, u) * (source.q - mean_posture)
        + offsets
    )
    cop, force = _carry_with_the_foot(
        model,
        (source.pelvis_recorded, source.q_recorded),
        (source.pelvis, q),
        source.cop,
        source.force,
    )
    # the centre of pressure exists only under load: bridge the unloaded samples linearly
    # (where it lies, carried, in the variant's world: continuous across the joins)
    loaded = source.contact
    if loaded.any():
        cop = np.column_stack([np.interp(u, u[loaded], c[loaded]) for c in cop.T])

    # output time tau(u) = integral du / s(u) over source samples u (in samples)
    s_of_u = _smooth_profile(source.knots, speeds, u)
    tau = np.concatenate([[0.0], np.cumsum(0.5 * (1 / s_of_u[1:] + 1 / s_of_u[:-1]))])
    n_out = math.floor(float(tau[-1])) + 1
    at = np.interp(np.arange(n_out, dtype=np.float64), tau, u)
    s = _smooth_profile(source.knots, speeds, at)
    q, pelvis = (CubicSpline(u, array, axis=0)(at) for array in (q, source.pelvis))
    contact = source.contact[np.clip(np.rint(at).astype(int), 0, u.size - 1)]
    force, cop, free_moment, static = (
        np.column_stack([np.interp(at, u, column) for column in array.T])
        for array in (force, cop, source.free_moment, source.support[:, None])
    )
    force_y = np.interp(at, u, source.force[:, 1])
    # the vertical force's ratio S/F_y + s²(1 − S/F_y), applied to the whole wrench
    static_fraction = np.divide(static[:, 0], force_y, out=np.ones_like(force_y), where=force_y > 0)
    ratio = np.maximum(s**2 + (1.0 - s**2) * static_fraction, 0.0)[:, None]
    force, free_moment = ratio * force, ratio * free_moment
    for array in (force, cop, free_moment):
        array[~contact] = 0.0

    description = (
        f"variant {number}: cycles {order or 'whole trial'}, speed x{speed_base:.3f}, "
        f"amplitude x{np.round(amplitude_base, 3).tolist()}, "
        f"offset {np.round(np.degrees(offsets), 2).tolist()} deg"
    )
    return LegTrial(
        time=np.arange(n_out) / trial.rate_hz,
        q=q,
        pelvis=pelvis,
        force=force,
        cop=cop,
        free_moment=free_moment,
        contact=contact,
        side=trial.side,
        rate_hz=trial.rate_hz,
        measured=trial.measured,
        source=trial.source,
        variant=description,
    )


def _carry_with_the_foot(
    model: LegModel,
    old_pose: tuple[np.ndarray, np.ndarray],
    new_pose: tuple[np.ndarray, np.ndarray],
    cop: np.ndarray,
    force: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """The centre of pressure carried rigidly by the foot from the recorded pose to the new
    one (each (pelvis (N, 6), q (N, 5))), and the force turned by the smallest rotation
    that takes the recorded hip-to-COP line onto the new one."""
    zero6, zero5 = np.zeros(6), np.zeros(5)
    old = leg_kinematics(model, old_pose[0], zero6, zero6, old_pose[1], zero5, zero5)
    new = leg_kinematics(model, new_pose[0], zero6, zero6, new_pose[1], zero5, zero5)
    in_foot = np.einsum("nji,nj->ni", old.orientation[:, _FOOT], cop - old.joint_centre[:, _ANKLE])
    carried = new.joint_centre[:, _ANKLE] + np.einsum(
        "nij,nj->ni", new.orientation[:, _FOOT], in_foot
    )
    turn = _rotation_between(cop - old.joint_centre[:, 0], carried - new.joint_centre[:, 0])
    return carried, np.einsum("nij,nj->ni", turn, force)


def _rotation_between(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Rotations (N, 3, 3) taking the directions of ``a`` (N, 3) onto those of ``b``
    about their common normal: R = I + [v]x + [v]x² / (1 + c), v = â x b̂, c = â . b̂."""
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    v = np.cross(a, b)
    c = np.einsum("ni,ni->n", a, b)
    cross = np.zeros((a.shape[0], 3, 3))
    cross[:, 0, 1], cross[:, 0, 2], cross[:, 1, 2] = -v[:, 2], v[:, 1], -v[:, 0]
    cross = cross - np.swapaxes(cross, 1, 2)
    return np.eye(3) + cross + (cross @ cross) / (1.0 + c)[:, None, None]
