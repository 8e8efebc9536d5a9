"""Score estimated activations and forces against reference labels (``train-eval``).

Activations and forces per muscle, R^2 (eq. 33) and NRMSE (eq. 34), on the
reference's own sample times inside [start, end] (``train.metrics.align``: the
estimate is interpolated, the reference never resampled). The estimates come
either from a trained network (a run or a bundle, through ``train.predict``) or
from existing storage files (``--predictions PREFIX``: PREFIX_activation.sto and
PREFIX_active_force.sto or PREFIX_force.sto), so ``train-so`` and
``train-predict`` results are scored the same way.

Forces: OpenSim's static optimisation reports active fibre force only (no
passive force; see /work/shared/data/README.md), so by default the estimate's
active force is compared (``--force-kind active``); ``total`` compares the
muscle-tendon force of eq. (18) for references that include passive force.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from train.metrics import AlignedSeries, MetricsError, Scores, align, score
from train.opensim_io import Storage, read_storage
from train.plots import plot_comparison
from train.predict import (
    PREDICTION_ERRORS,
    add_angle_arguments,
    load_predictor,
    lowpass_hz,
    predict_files,
)

FORCE_FILES = {"active": "active_force", "total": "force"}


class EvaluationError(ValueError):
    """Estimates and references that cannot be compared; the message says why."""


@dataclass(frozen=True)
class Comparison:
    """One quantity (activation or force): the aligned series and their scores."""

    quantity: str
    unit: str
    series: AlignedSeries
    scores: Scores


def compare(
    reference: Storage,
    estimate_time: np.ndarray,
    estimate: np.ndarray,
    muscles: tuple[str, ...],
    quantity: str,
    unit: str,
    start_s: float | None = None,
    end_s: float | None = None,
) -> Comparison:
    """Score ``estimate`` (K, M) at ``estimate_time`` (K,) s against the reference's
    columns named ``muscles``."""
    missing = [m for m in muscles if not reference.has_column(m)]
    if missing:
        raise EvaluationError(
            f"the reference {reference.path} has no column for {', '.join(missing)} "
            f"(its columns: {', '.join(reference.columns[:12])}"
            f"{' ...' if len(reference.columns) > 12 else ''}); the estimate's columns are "
            "the subject's muscle names"
        )
    series = align(
        reference.time,
        reference.columns_of(list(muscles)),
        estimate_time,
        estimate,
        muscles,
        start_s,
        end_s,
    )
    return Comparison(quantity, unit, series, score(series))


def estimates_from_files(prefix: str | Path, force_kind: str) -> tuple[Storage, Storage | None]:
    """PREFIX_activation.sto and, when it exists, the force file of ``force_kind``."""
    activation = read_storage(f"{prefix}_activation.sto")
    force_path = Path(f"{prefix}_{FORCE_FILES[force_kind]}.sto")
    return activation, read_storage(force_path) if force_path.is_file() else None


def format_table(comparisons: list[Comparison]) -> str:
    """Per-muscle R^2 and NRMSE of each quantity, and their means, as aligned text."""
    muscles = comparisons[0].series.columns
    width = max(len("muscle"), *(len(m) for m in muscles))
    header = f"{'muscle':<{width}}" + "".join(
        f"  {c.quantity + ' R²':>12}  {c.quantity + ' NRMSE':>15}" for c in comparisons
    )
    lines = [header, "-" * len(header)]
    for i, name in enumerate(muscles):
        lines.append(
            f"{name:<{width}}"
            + "".join(f"  {c.scores.r2[i]:>12.3f}  {c.scores.nrmse[i]:>15.3f}" for c in comparisons)
        )
    lines.append("-" * len(header))
    lines.append(
        f"{'mean':<{width}}"
        + "".join(f"  {c.scores.mean_r2:>12.3f}  {c.scores.mean_nrmse:>15.3f}" for c in comparisons)
    )
    first = comparisons[0].scores
    lines.append(
        f"({first.samples} reference samples, {first.span_s[0]:.3f}-{first.span_s[1]:.3f} s)"
    )
    return "\n".join(lines)


def to_json(comparisons: list[Comparison], source: str) -> dict:
    return {
        "source": source,
        "metrics": "R² eq. (33), NRMSE eq. (34) per muscle",
        **{c.quantity: c.scores.to_dict() for c in comparisons},
    }


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="train-eval",
        description=(
            "Score muscle activation and force estimates against reference labels "
            "(e.g. OpenSim static optimisation): R² (eq. 33) and NRMSE (eq. 34) per "
            "muscle, on the reference's sample times within [--start, --end]. Estimates "
            "come from a trained network (RUN: a training run or a bundle, with --ik) or "
            "from existing files (--predictions PREFIX, e.g. train-so or train-predict "
            "output). Prints a table; --json and --plot save the scores and a figure."
        ),
    )
    parser.add_argument("run", metavar="RUN", nargs="?", help="training run or bundle directory")
    parser.add_argument(
        "--predictions",
        metavar="PREFIX",
        help="score PREFIX_activation.sto and PREFIX_active_force.sto instead of running a network",
    )
    parser.add_argument("--ik", help="inverse-kinematics coordinates (.mot/.sto), with RUN")
    add_angle_arguments(parser)
    parser.add_argument("--labels", required=True, help="reference activations (.sto)")
    parser.add_argument("--forces", help="reference muscle forces (.sto)")
    parser.add_argument(
        "--force-kind",
        choices=tuple(FORCE_FILES),
        default="active",
        help="which estimated force to score: active (as OpenSim SO reports) or total (eq. 18)",
    )
    parser.add_argument(
        "--muscles",
        metavar="A,B,...",
        help="score only these muscles (comma-separated; default: every estimated muscle)",
    )
    parser.add_argument("--start", type=float, metavar="S", help="start of the scored span (s)")
    parser.add_argument("--end", type=float, metavar="S", help="end of the scored span (s)")
    parser.add_argument("--json", metavar="FILE", help="write the scores as JSON")
    parser.add_argument("--plot", metavar="FILE", help="write a Fig. 4-style figure (.png/.pdf)")
    parser.add_argument(
        "--cycle",
        type=float,
        nargs=2,
        metavar=("HS1", "HS2"),
        help="two heel strikes (s): plot against %% of that gait cycle",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if (args.run is None) == (args.predictions is None):
        parser.error("give either RUN (with --ik) or --predictions PREFIX")
    if args.run is not None and args.ik is None:
        parser.error("RUN needs --ik")
    try:
        comparisons, source = _evaluate(args)
        if args.json:
            Path(args.json).parent.mkdir(parents=True, exist_ok=True)
            Path(args.json).write_text(json.dumps(to_json(comparisons, source), indent=2) + "\n")
        if args.plot:
            plot_comparison(
                args.plot,
                [(c.quantity, c.unit, c.series, c.scores) for c in comparisons],
                cycle_s=tuple(args.cycle) if args.cycle else None,
                title=source,
            )
    except (EvaluationError, MetricsError, *PREDICTION_ERRORS) as exc:
        print(f"train-eval: error: {exc}", file=sys.stderr)
        return 2
    print(source)
    print(format_table(comparisons))
    for path in (args.json, args.plot):
        if path:
            print(f"wrote {path}")
    return 0


def _evaluate(args: argparse.Namespace) -> tuple[list[Comparison], str]:
    labels = read_storage(args.labels)
    force_labels = read_storage(args.forces) if args.forces else None
    if args.predictions is not None:
        activation, force = estimates_from_files(args.predictions, args.force_kind)
        muscles = activation.columns
        estimates = [("activation", "", activation.time, activation.data)]
        if force_labels is not None:
            if force is None:
                raise EvaluationError(
                    f"--forces given but {args.predictions}_{FORCE_FILES[args.force_kind]}.sto "
                    "does not exist"
                )
            estimates.append(("force", "N", force.time, force.columns_of(list(muscles))))
        source = f"predictions {args.predictions}"
    else:
        predictor = load_predictor(args.run)
        prediction = predict_files(
            predictor,
            args.ik,
            side=args.side,
            lowpass_hz=lowpass_hz(args),
        )
        muscles = predictor.muscles
        estimates = [("activation", "", prediction.time, prediction.activation)]
        if force_labels is not None:
            force = prediction.active_force if args.force_kind == "active" else prediction.force
            estimates.append(("force", "N", prediction.time, force))
        source = predictor.source
    columns = _selected(muscles, args.muscles)
    estimates = [
        (quantity, unit, t, np.asarray(data)[:, [muscles.index(m) for m in columns]])
        for quantity, unit, t, data in estimates
    ]
    references = {"activation": labels, "force": force_labels}
    comparisons = [
        compare(references[quantity], t, data, columns, quantity, unit, args.start, args.end)
        for quantity, unit, t, data in estimates
    ]
    return comparisons, source


def _selected(muscles: tuple[str, ...], requested: str | None) -> tuple[str, ...]:
    if requested is None:
        return tuple(muscles)
    names = tuple(n.strip() for n in requested.split(",") if n.strip())
    unknown = [n for n in names if n not in muscles]
    if unknown or not names:
        raise EvaluationError(
            f"--muscles names {', '.join(unknown) or 'nothing'} not among the estimated "
            f"muscles ({', '.join(muscles)})"
        )
    return names
