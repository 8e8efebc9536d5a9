"""Scale the generic gait2392 subject to a person's height and mass.

Rules (k_h = height / generic height, k_m = mass / generic mass):
- lengths (hip centre, segment centres of mass and joint centres) x k_h;
- segment masses x k_m; inertia tensors x k_m * k_h**2 (I ~ m L^2);
- optimal fibre lengths, tendon slack lengths and muscle-tendon path
  polynomials (hence moment arms) x the leg-length ratio, which equals k_h
  because every length of the generic leg scales with height;
- maximum isometric forces x k_m ** (2/3): geometric similarity, muscle force
  proportional to cross-sectional area ~ L^2 with L ~ m^(1/3) (allometric
  strength normalisation, Jaric S., "Muscle strength testing: use of
  normalisation for body size", Sports Med 32(10):615-631, 2002);
- pennation, max contraction velocity (in optimal fibre lengths per second)
  and strength scales are dimensionless and unchanged; so are the joints'
  axes and ranges.

The generic coefficients (``calib/data/generic_gait2392.json``) are produced by
``scripts/build_generic_subject.py`` from OpenSim's generic gait2392 model.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from calib.coordinates import PAPER_MUSCLES
from calib.subject import (
    Body,
    Segment,
    Subject,
    SubjectError,
    Vector3,
    load_subject,
    tensor3,
    vector3,
)

GENERIC_SUBJECT_PATH = Path(__file__).resolve().parent / "data" / "generic_gait2392.json"
# gait2392 is documented as a person about 1.8 m tall; its bodies weigh 75.16 kg.
GENERIC_HEIGHT_M = 1.80
FORCE_MASS_EXPONENT = 2.0 / 3.0


def generic_subject() -> Subject:
    """Generic gait2392 at its own size with every right-leg muscle that crosses its coordinates."""
    return load_subject(GENERIC_SUBJECT_PATH)


def select_muscles(subject: Subject, spec: str | None) -> Subject:
    """Keep the muscles named by ``spec``: None or "all" -> every one, "paper" -> the
    paper's ten, or a comma-separated list."""
    if spec is None or spec.strip() == "all":
        return subject
    names: tuple[str, ...]
    if spec.strip() == "paper":
        names = PAPER_MUSCLES
    else:
        names = tuple(n.strip() for n in spec.split(",") if n.strip())
    if not names:
        raise SubjectError(
            "--muscles: expected 'all', 'paper' or a comma-separated list of muscle names"
        )
    by_name = {m.name: m for m in subject.muscles}
    unknown = [n for n in names if n not in by_name]
    if unknown:
        raise SubjectError(f"unknown muscle(s) {unknown}; known: {', '.join(subject.muscle_names)}")
    return dataclasses.replace(subject, muscles=tuple(by_name[n] for n in names))


def scale_subject(generic: Subject, height: float, mass: float) -> Subject:
    """The generic subject scaled to ``height`` (m) and ``mass`` (kg); see the module rules."""
    for name, value, lo, hi in (("height", height, 0.5, 2.6), ("mass", mass, 10.0, 400.0)):
        if not lo <= value <= hi:
            raise SubjectError(f"{name} {value:g} is outside the plausible range [{lo:g}, {hi:g}]")
    k_h = height / generic.body.height
    k_m = mass / generic.body.mass
    k_f = k_m**FORCE_MASS_EXPONENT

    def scale_length(p: Vector3) -> Vector3:
        return vector3(v * k_h for v in p)

    k_inertia = k_m * k_h**2
    segments = {
        name: Segment(
            mass=s.mass * k_m,
            inertia=tensor3((v * k_inertia for v in row) for row in s.inertia),
            com=scale_length(s.com),
            distal_joint=scale_length(s.distal_joint),
        )
        for name, s in generic.segments.items()
    }
    muscles = tuple(
        dataclasses.replace(
            m,
            max_isometric_force=m.max_isometric_force * k_f,
            optimal_fiber_length=m.optimal_fiber_length * k_h,
            tendon_slack_length=m.tendon_slack_length * k_h,
            path=m.path.scaled(k_h),
        )
        for m in generic.muscles
    )
    return Subject(
        body=Body(mass=mass, height=height, side=generic.body.side),
        hip_centre=scale_length(generic.hip_centre),
        segments=segments,
        joints=generic.joints,
        muscles=muscles,
        source=f"generic gait2392 scaled to height {height:g} m, mass {mass:g} kg",
    )


def apply_strength(subject: Subject, scales: dict[str, float]) -> Subject:
    """Set per-muscle strength scales (1 = as modelled, 0.5 = half as strong)."""
    unknown = [n for n in scales if n not in subject.muscle_names]
    if unknown:
        raise SubjectError(
            f"--strength names unknown muscle(s) {unknown}; "
            f"known: {', '.join(subject.muscle_names)}"
        )
    return dataclasses.replace(
        subject,
        muscles=tuple(
            dataclasses.replace(m, strength_scale=scales.get(m.name, m.strength_scale))
            for m in subject.muscles
        ),
    )
