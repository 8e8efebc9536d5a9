"""Label-free training sets beyond one recorded trial.

One walking trial is little to train on. Without labels, a new trial only has
to be a plausible movement with consistent loads: the physics loss then asks
the network for the muscle activations that balance it. ``augment_trials``
makes such trials from the recorded ones, deterministically for a seed:

1. **Both legs.** Load both (``train.trial.load_both_legs``): OpenSim's left
   sagittal coordinates share the right's signs, so the left leg is a second
   sample of the same chain. Pass both here: their vertical forces give each
   foot's share of body weight (below).
2. **Cycle splicing.** Each leg's trial is cut at its heel strikes into whole
   gait cycles; a variant strings ``cycles_per_variant`` cycles drawn with
   replacement. Each cycle is made exactly periodic (its angles' end-to-start
   drift is removed linearly over the cycle) and shifted to the cycles' mean
   heel-strike posture, so the joins are continuous in angle and (to the gait's
   own periodicity) in velocity. A leg without a whole cycle is varied as one
   piece, without splicing.
3. **Speed.** Time is warped by a cadence factor s (log-uniform in
   ``speed_range``, with ``cycle_speed_jitter`` of cycle-to-cycle variation,
   smooth between cycles): a cycle of duration T lasts T / s. Joint velocities
   then scale with s and accelerations with s², as the physics loss sees them.
   The ground reaction force's vertical part is split into the foot's share
   of body weight S = σ m g (σ = this foot's vertical force over both feet's;
   with one leg only, S = min(F_y, m g)) and a dynamic part F_y − S, the part
   that accelerates the body's centre of mass. Warping the movement's shape in
   time scales the centre of mass's acceleration by s², so the vertical force
   becomes S + s² (F_y − S) (kept ≥ 0). The force keeps its direction: the
   whole vector is scaled by that ratio, because in walking the ground reaction
   points at nearly the same place above the hips at every instant (its lines
   of action meet near a point above the centre of mass), and a warp keeps the
   geometry. Scaling F_x by s² as well (a treadmill's horizontal force is all
   dynamic) would tilt the force away from that point and swing the hip torque
   by ~25 N·m at s = 0.8 — a posture-force combination no real slow walk has;
   the price of keeping the direction is that the horizontal force does not
   follow the centre of mass's s² exactly. The hip centre's acceleration scales
   by s², pelvis tilt keeps its values.

   What a warp cannot represent: a person walking faster takes longer steps
   (a warp keeps stride length and changes cadence only), swings the joints
   further, spends a smaller fraction of the cycle in stance and loads the
   heel harder at impact (an impact transient is not an s² effect). Speeds
   far from the recorded one are therefore less realistic than the factor
   suggests: keep ``speed_range`` moderate (0.8–1.25 by default).
4. **Amplitude and offset.** Each joint's excursion about its mean is scaled
   by a factor in ``amplitude_range`` (with ``cycle_amplitude_jitter`` per
   cycle, smooth) and offset by up to ``offset_rad`` (±2° by default, the size
   of a sensor's zero error or a person's postural difference). The centre of
   pressure moves rigidly with the foot (it keeps its place under the foot as
   the ankle moves), so the ground force keeps acting where the foot is; it
   may then sit slightly above or below the recorded floor, which the planar
   dynamics about the hip do not need. The force keeps its magnitude (the
   body's weight must be carried whatever the joint excursion) and turns with
   the hip-to-COP line, because the ground reaction points roughly at the
   body's centre of mass, near the hips: its moment about the hip is kept, and
   the knee and ankle see the lever arms of the new posture. Without that turn
   2° of hip offset would move the foot 3 cm under a fixed force line and add
   ~20 N·m of hip torque that no real posture change would bring.

Variants start at time 0 and name what was done in ``LegTrial.variant``.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
from scipy.interpolate import CubicSpline, PchipInterpolator

from train.dynamics import GRAVITY, joint_positions
from train.trial import LegTrial, TrialError

__all__ = ["AugmentConfig", "augment_trials", "static_support"]

_ANKLE = 2  # index of the ankle among train.dynamics.POINTS


@dataclass(frozen=True)
class AugmentConfig:
    """How far variants stray from the recorded cycles (factors are relative, angles in rad)."""

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
            raise TrialError(f"amplitude_range must satisfy 0 < low <= high, got {self.amplitude_range}")
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

    ``subject`` (``calib.Subject``) gives body mass (weight share) and the chain
    (the foot's position, which the centre of pressure follows). Trials loaded
    from the same files at the same times are taken as the two legs of one
    recording. The same ``seed`` gives the same variants.
    """
    config = config or AugmentConfig()
    if n_variants < 0:
        raise TrialError(f"n_variants must be >= 0, got {n_variants}")
    supports = [static_support(trial, _sibling(trial, trials), subject.body.mass) for trial in trials]
    variants = []
    for index, (trial, support) in enumerate(zip(trials, supports)):
        pieces = _cycles(trial)
        for number in range(n_variants):
            rng = np.random.default_rng((seed, index, number))
            variants.append(_variant(trial, support, pieces, subject, rng, config, number))
    return variants


def static_support(trial: LegTrial, sibling: LegTrial | None, body_mass_kg: float) -> np.ndarray:
    """The foot's share of body weight (N,) N: σ m g, σ its vertical force over both feet's.

    Without the other leg, min(F_y, m g): the part above body weight is dynamic.
    """
    weight = body_mass_kg * GRAVITY
    own = trial.force[:, 1]
    if sibling is None:
        return np.minimum(own, weight)
    total = own + sibling.force[:, 1]
    share = np.divide(own, total, out=np.zeros_like(own), where=total > 0)
    return share * weight


def _sibling(trial: LegTrial, trials: list[LegTrial]) -> LegTrial | None:
    for other in trials:
        if (other is not trial and other.side != trial.side and other.source == trial.source
                and other.n_samples == trial.n_samples and np.array_equal(other.time, trial.time)):
            return other
    return None


def _cycles(trial: LegTrial) -> list[tuple[int, int]]:
    """[start, end] sample indices of whole cycles, heel strike to the next heel strike (inclusive)."""
    strikes = np.flatnonzero(np.diff(trial.contact.astype(np.int8)) == 1) + 1
    return [(int(a), int(b)) for a, b in itertools.pairwise(strikes)]


@dataclass(frozen=True)
class _Source:
    """A spliced sequence at the trial's rate, before warping; ``knots`` are each piece's mid-sample."""

    q: np.ndarray
    q_recorded: np.ndarray
    tilt: np.ndarray
    force: np.ndarray
    cop: np.ndarray
    contact: np.ndarray
    support: np.ndarray
    hip_acceleration: np.ndarray
    knots: np.ndarray


def _splice(trial: LegTrial, support: np.ndarray, pieces: list[tuple[int, int]],
            order: list[int]) -> _Source:
    """Chosen cycles end to end, each periodic and starting at the mean heel-strike posture."""
    start_posture = np.mean([trial.q[a] for a, _ in pieces], axis=0)
    start_tilt = float(np.mean([trial.pelvis_tilt[a] for a, _ in pieces]))
    parts: dict[str, list[np.ndarray]] = {k: [] for k in
                                          ("q", "q_recorded", "tilt", "force", "cop", "contact",
                                           "support", "hip_acceleration")}
    knots, offset = [], 0
    for choice in order:
        a, b = pieces[choice]
        n = b - a
        ramp = (np.arange(n) / n)[:, None]
        drift = trial.q[b] - trial.q[a]
        parts["q"].append(trial.q[a:b] - ramp * drift + (start_posture - trial.q[a]))
        tilt_drift = trial.pelvis_tilt[b] - trial.pelvis_tilt[a]
        parts["tilt"].append(trial.pelvis_tilt[a:b] - ramp[:, 0] * tilt_drift
                             + (start_tilt - trial.pelvis_tilt[a]))
        parts["q_recorded"].append(trial.q[a:b])
        parts["force"].append(trial.force[a:b])
        parts["cop"].append(trial.cop[a:b])
        parts["contact"].append(trial.contact[a:b])
        parts["support"].append(support[a:b])
        parts["hip_acceleration"].append(trial.hip_acceleration[a:b])
        knots.append(offset + 0.5 * n)
        offset += n
    # close the sequence with the first sample of a following cycle
    parts["q"].append(start_posture[None, :])
    parts["tilt"].append(np.array([start_tilt]))
    a, _ = pieces[order[0]]
    for name, array in (("q_recorded", trial.q), ("force", trial.force), ("cop", trial.cop),
                        ("contact", trial.contact), ("support", support),
                        ("hip_acceleration", trial.hip_acceleration)):
        parts[name].append(array[a:a + 1])
    return _Source(**{k: np.concatenate(v) for k, v in parts.items()}, knots=np.asarray(knots))


def _whole(trial: LegTrial, support: np.ndarray) -> _Source:
    return _Source(q=trial.q, q_recorded=trial.q, tilt=trial.pelvis_tilt, force=trial.force,
                   cop=trial.cop, contact=trial.contact, support=support,
                   hip_acceleration=trial.hip_acceleration,
                   knots=np.array([0.5 * (trial.n_samples - 1)]))


def _smooth_profile(knots: np.ndarray, values: np.ndarray, at: np.ndarray) -> np.ndarray:
    """Values at the pieces' mid-samples, joined smoothly (PCHIP: no overshoot), held beyond."""
    if knots.size == 1:
        return np.broadcast_to(values[0], (at.size, *values.shape[1:])).copy()
    clipped = np.clip(at, knots[0], knots[-1])
    return PchipInterpolator(knots, values, axis=0)(clipped)


def _variant(trial: LegTrial, support: np.ndarray, pieces: list[tuple[int, int]], subject,
             rng: np.random.Generator, config: AugmentConfig, number: int) -> LegTrial:
    if pieces:
        order = [int(i) for i in rng.integers(len(pieces), size=config.cycles_per_variant)]
        source = _splice(trial, support, pieces, order)
    else:
        order = []
        source = _whole(trial, support)
    n_pieces = source.knots.size
    lo, hi = np.log(config.speed_range)
    speed_base = float(np.exp(rng.uniform(lo, hi)))
    speeds = np.clip(speed_base * np.exp(config.cycle_speed_jitter * rng.standard_normal(n_pieces)),
                     *config.speed_range)
    lo, hi = np.log(config.amplitude_range)
    amplitude_base = np.exp(rng.uniform(lo, hi, size=3))
    amplitudes = amplitude_base * np.exp(
        config.cycle_amplitude_jitter * rng.standard_normal((n_pieces, 3)))
    offsets = rng.uniform(-config.offset_rad, config.offset_rad, size=3)

    # output time tau(u) = integral du / s(u) over source samples u (in samples)
    u = np.arange(source.q.shape[0], dtype=np.float64)
    s_of_u = _smooth_profile(source.knots, speeds, u)
    tau = np.concatenate([[0.0], np.cumsum(0.5 * (1 / s_of_u[1:] + 1 / s_of_u[:-1]))])
    n_out = math.floor(float(tau[-1])) + 1
    at = np.interp(np.arange(n_out, dtype=np.float64), tau, u)
    s = _smooth_profile(source.knots, speeds, at)
    alpha = _smooth_profile(source.knots, amplitudes, at)

    q_source = CubicSpline(u, source.q, axis=0)(at)
    q_recorded = CubicSpline(u, source.q_recorded, axis=0)(at)
    mean_posture = source.q.mean(axis=0)
    q = mean_posture + alpha * (q_source - mean_posture) + offsets
    tilt = CubicSpline(u, source.tilt)(at)

    nearest = np.clip(np.rint(at).astype(int), 0, u.size - 1)
    contact = source.contact[nearest].copy()
    # the centre of pressure exists only under load: interpolate between loaded samples only
    loaded = source.contact
    cop_source = (np.column_stack([np.interp(u, u[loaded], c[loaded]) for c in source.cop.T])
                  if loaded.any() else source.cop)
    linear = np.column_stack([np.interp(at, u, column) for column in
                              (*source.force.T, *cop_source.T, source.support,
                               *source.hip_acceleration.T)])
    force_x, force_y, cop_x, cop_y, static, acc_x, acc_y = linear.T
    # the vertical force's ratio S/F_y + s²(1 − S/F_y), applied to the whole vector
    static_fraction = np.divide(static, force_y, out=np.ones_like(force_y), where=force_y > 0)
    ratio = np.maximum(s**2 + (1.0 - s**2) * static_fraction, 0.0)
    force = ratio[:, None] * np.column_stack([force_x, force_y])
    cop_recorded = np.column_stack([cop_x, cop_y])
    cop = _cop_with_the_foot(subject, q_recorded, q, tilt, cop_recorded)
    force = _turn_with_the_leg(force, cop_recorded, cop)
    force[~contact] = 0.0
    cop[~contact] = 0.0
    hip_acceleration = s[:, None] ** 2 * np.column_stack([acc_x, acc_y])

    description = (
        f"variant {number}: cycles {order or 'whole trial'}, speed x{speed_base:.3f}, "
        f"amplitude x{np.round(amplitude_base, 3).tolist()}, "
        f"offset {np.round(np.degrees(offsets), 2).tolist()} deg"
    )
    return LegTrial(
        time=np.arange(n_out) / trial.rate_hz,
        q=q,
        force=force,
        cop=cop,
        contact=contact,
        pelvis_tilt=tilt,
        hip_acceleration=hip_acceleration,
        side=trial.side,
        rate_hz=trial.rate_hz,
        source=trial.source,
        variant=description,
    )


def _cop_with_the_foot(subject, q_old: np.ndarray, q_new: np.ndarray, tilt: np.ndarray,
                       cop: np.ndarray) -> np.ndarray:
    """Carry the centre of pressure rigidly with the foot from pose ``q_old`` to ``q_new`` (hip frame)."""
    ankle_old = joint_positions(subject, q_old, tilt)[:, _ANKLE]
    ankle_new = joint_positions(subject, q_new, tilt)[:, _ANKLE]
    turn = q_new.sum(axis=1) - q_old.sum(axis=1)  # the foot's absolute angle changes by Σ Δq
    c, s = np.cos(turn), np.sin(turn)
    r = cop - ankle_old
    return ankle_new + np.column_stack([c * r[:, 0] - s * r[:, 1], s * r[:, 0] + c * r[:, 1]])


def _turn_with_the_leg(force: np.ndarray, cop_old: np.ndarray, cop_new: np.ndarray) -> np.ndarray:
    """Turn the force by the angle the hip-to-COP line turned: its moment about the hip is kept."""
    turn = (np.arctan2(cop_new[:, 1], cop_new[:, 0]) - np.arctan2(cop_old[:, 1], cop_old[:, 0]))
    c, s = np.cos(turn), np.sin(turn)
    return np.column_stack([c * force[:, 0] - s * force[:, 1], s * force[:, 0] + c * force[:, 1]])
