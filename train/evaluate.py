"""Score estimated activations and forces against reference labels and EMG (``train-eval``).

Activations and forces per muscle: R^2 (eq. 33), Pearson's r and NRMSE (eq. 34), with
the rule of ``train.metrics`` for when each is defined, on the reference's own sample
times inside [start, end] (``train.metrics.align``: the estimate is interpolated, the
reference never resampled). The estimates come either from a trained network (a run
or a bundle, through ``train.predict``) or from existing storage files
(``--predictions PREFIX``: PREFIX_activation.sto and PREFIX_active_force.sto or
PREFIX_force.sto), so ``train-so`` and ``train-predict`` results are scored the same
way. With ``--emg`` the estimated activations (and the reference's, when given) are
held against EMG envelopes (``train.emg``).

Full scale (what "the reference varies enough" is measured against): 1 for
activations; for forces each muscle's maximum isometric force from the subject (the
run's or bundle's, or ``--subject``), else, without a subject, the reference's own peak
force over the whole file, and the output says which.

The left leg (``--side l``): the estimate's columns carry the subject's muscle names
(``..._r``); a reference column is the name's ``_l`` twin where the reference has one
(OpenSim's static optimisation of both legs), else the name itself (``train-so --side l``
writes the subject's names).

Forces: OpenSim's static optimisation reports active fibre force only (no passive
force; see /work/shared/data/README.md), so by default the estimate's active force is
compared (``--force-kind active``); ``total`` compares the muscle-tendon force of
eq. (18) for references that include passive force.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from calib.coordinates import PAPER_MUSCLES
from calib.subject import SubjectError, load_subject
from train.cli import angles_in_degrees, lowpass_hz
from train.data_checks import DataError, check_span
from train.device import resolve_device
from train.emg import (
    EMG_ERRORS,
    EmgComparison,
    EmgSettings,
    compare_emg,
    emg_panels,
    load_emg,
    map_channels,
    read_map,
)
from train.metrics import R2_MIN_RANGE, AlignedSeries, MetricsError, Scores, align, score
from train.opensim_io import Storage, read_storage
from train.options import FORCE_KINDS
from train.plots import figure_formats, plot_comparison
from train.predict import PREDICTION_ERRORS, load_predictor, predict_files

FORCE_FILES = dict(zip(FORCE_KINDS, ("active_force", "force")))


class EvaluationError(ValueError):
    """Estimates and references that cannot be compared; the message says why."""


EVALUATION_ERRORS: tuple[type[Exception], ...] = (
    EvaluationError,
    MetricsError,
    DataError,
    SubjectError,
    *EMG_ERRORS,
    *PREDICTION_ERRORS,
)


@dataclass(frozen=True)
class Comparison:
    """One quantity (activation or force): the aligned series and their scores."""

    quantity: str
    unit: str
    series: AlignedSeries
    scores: Scores
    full_scale: str


@dataclass(frozen=True)
class Estimate:
    """One estimated quantity: ``time`` (K,) s and ``data`` (K, M) for ``muscles``."""

    quantity: str
    unit: str
    time: np.ndarray
    data: np.ndarray


@dataclass(frozen=True)
class Evaluation:
    """What ``evaluate`` found: the comparisons, the EMG comparison, notes for the user
    and the muscles a figure shows by default."""

    source: str
    comparisons: list[Comparison]
    emg: EmgComparison | None
    plot_muscles: tuple[str, ...]
    notes: list[str] = field(default_factory=list)


def reference_columns(reference: Storage, muscles: tuple[str, ...], side: str) -> list[str]:
    """The reference's column for each estimated muscle (module doc: the left leg)."""
    if side != "l":
        return list(muscles)
    twins = [m[:-2] + "_l" if m.endswith("_r") else m for m in muscles]
    return [t if reference.has_column(t) else m for t, m in zip(twins, muscles)]


def compare(
    reference: Storage,
    estimate: Estimate,
    muscles: tuple[str, ...],
    full_scale: np.ndarray | float = 1.0,
    full_scale_source: str = "1",
    start_s: float | None = None,
    end_s: float | None = None,
    side: str = "r",
) -> Comparison:
    """Score ``estimate`` (K, M) against the reference's columns for ``muscles``."""
    columns = reference_columns(reference, muscles, side)
    missing = [c for c in columns if not reference.has_column(c)]
    if missing:
        raise EvaluationError(
            f"the reference {reference.path} has no column for {', '.join(missing)} "
            f"(its columns: {', '.join(reference.columns[:12])}"
            f"{' ...' if len(reference.columns) > 12 else ''}); the estimate's columns are "
            "the subject's muscle names"
        )
    series = align(
        reference.time,
        reference.columns_of(columns),
        estimate.time,
        estimate.data,
        muscles,
        start_s,
        end_s,
    )
    return Comparison(
        estimate.quantity, estimate.unit, series, score(series, full_scale), full_scale_source
    )


def estimates_from_files(prefix: str | Path, force_kind: str) -> tuple[Storage, Storage | None]:
    """PREFIX_activation.sto and, when it exists, the force file of ``force_kind``."""
    activation = read_storage(f"{prefix}_activation.sto")
    force_path = Path(f"{prefix}_{FORCE_FILES[force_kind]}.sto")
    return activation, read_storage(force_path) if force_path.is_file() else None


def format_table(comparisons: list[Comparison]) -> str:
    """Per-muscle R^2, r and NRMSE of each quantity, their means and over how many muscles."""
    muscles = comparisons[0].series.columns
    width = max(len("of muscles"), *(len(m) for m in muscles))
    metrics = (("R²", "r2"), ("r", "r"), ("NRMSE", "nrmse"))
    headers = [f"{c.quantity} {label}" for c in comparisons for label, _ in metrics]
    widths = [max(len(h), 6) for h in headers]
    header = f"{'muscle':<{width}}" + "".join(f"  {h:>{w}}" for h, w in zip(headers, widths))

    def row(label: str, values: list[str]) -> str:
        return f"{label:<{width}}" + "".join(f"  {v:>{w}}" for v, w in zip(values, widths))

    def cells(getter) -> list[str]:
        return [getter(c.scores, key) for c in comparisons for _, key in metrics]

    lines = [header, "-" * len(header)]
    for i, name in enumerate(muscles):
        lines.append(row(name, cells(lambda s, key, i=i: _cell(getattr(s, key)[i]))))
    lines.append("-" * len(header))
    lines.append(row("mean", cells(lambda s, key: _cell(getattr(s, f"mean_{key}")))))
    lines.append(
        row("of muscles", cells(lambda s, key: str(int(np.isfinite(getattr(s, key)).sum()))))
    )
    first = comparisons[0].scores
    assert first.span_s is not None  # a comparison scores one time series, which has a span
    lines.append(
        f"({first.samples} reference samples, {first.span_s[0]:.3f}-{first.span_s[1]:.3f} s)"
    )
    lines.append(f"({definition_rule(comparisons)})")
    return "\n".join(lines)


def definition_rule(comparisons: list[Comparison]) -> str:
    """The R^2 rule in words, with each quantity's full scale."""
    scales = "; ".join(f"{c.quantity} full scale {c.full_scale}" for c in comparisons)
    return (
        f"R² only where the reference's range reaches {100 * R2_MIN_RANGE:g} % of full "
        f"scale, NRMSE over max(range, {100 * R2_MIN_RANGE:g} % of full scale), '-' = "
        f"undefined; {scales}"
    )


def to_json(evaluation: Evaluation) -> dict:
    comparisons = evaluation.comparisons
    data: dict = {
        "source": evaluation.source,
        "metrics": "R² eq. (33), NRMSE eq. (34), Pearson r, per muscle; null = undefined",
    }
    if comparisons:
        data["rule"] = definition_rule(comparisons)
    for c in comparisons:
        data[c.quantity] = {**c.scores.to_dict(), "full_scale": c.full_scale}
    if evaluation.emg is not None:
        data["emg"] = evaluation.emg.to_dict()
        data["emg_settings"] = evaluation.emg.settings
    return data


def selected_muscles(muscles: tuple[str, ...], requested: str | None) -> tuple[str, ...]:
    """--muscles: 'all', a comma-separated list of estimated muscles, or None (all)."""
    if requested is None or requested.strip() == "all":
        return tuple(muscles)
    names = tuple(n.strip() for n in requested.split(",") if n.strip())
    unknown = [n for n in names if n not in muscles]
    if unknown or not names:
        raise EvaluationError(
            f"--muscles names {', '.join(unknown) or 'nothing'} not among the estimated "
            f"muscles ({', '.join(muscles)}); give a comma-separated list of them or 'all'"
        )
    return names


def default_plot_muscles(scored: tuple[str, ...], requested: str | None) -> tuple[str, ...]:
    """The muscles a figure shows: those of --muscles, else the paper's ten among the
    scored ones, else all scored."""
    if requested is not None:
        return scored
    paper = tuple(m for m in PAPER_MUSCLES if m in scored)
    return paper or scored


def evaluate(args: argparse.Namespace) -> Evaluation:
    """Everything ``train-eval`` computes from its parsed arguments (``train.cli.evaluate``)."""
    if args.run is not None:
        resolve_device(args.device)  # refuse a device this machine lacks before reading
    labels = read_storage(args.labels) if args.labels else None
    force_labels = read_storage(args.forces) if args.forces else None
    notes: list[str] = []
    subject = load_subject(args.subject) if args.subject else None
    if args.predictions is not None:
        activation, force = estimates_from_files(args.predictions, args.force_kind)
        muscles = activation.columns
        estimates = [Estimate("activation", "", activation.time, activation.data)]
        if force_labels is not None:
            if force is None:
                raise EvaluationError(
                    f"--forces given but {args.predictions}_{FORCE_FILES[args.force_kind]}.sto "
                    "does not exist"
                )
            estimates.append(Estimate("force", "N", force.time, force.columns_of(list(muscles))))
        source = f"predictions {args.predictions}"
        data_span = None
    else:
        predictor = load_predictor(args.run, args.backend, args.threads, args.device)
        prediction = predict_files(
            predictor,
            args.ik,
            side=args.side,
            lowpass_hz=lowpass_hz(args),
            angles_in_degrees=angles_in_degrees(args),
        )
        muscles = predictor.muscles
        subject = subject or predictor.subject
        estimates = [Estimate("activation", "", prediction.time, prediction.activation)]
        if force_labels is not None:
            forces = prediction.active_force if args.force_kind == "active" else prediction.force
            estimates.append(Estimate("force", "N", prediction.time, forces))
        source = predictor.source
        data_span = (
            prediction.time[0] - (predictor.history - 1 - predictor.lookahead) / predictor.rate_hz,
            prediction.time[-1],
        )
        notes.append(
            f"network: {prediction.time.size} windows in {prediction.inference_s:.2f} s "
            f"({predictor.source})"
        )
    if args.side == "l":
        source += ", left leg"
        if labels is not None:
            twins = reference_columns(labels, tuple(muscles), "l")
            notes.append(
                f"left leg: the subject's muscles scored against the reference's "
                f"{sum(t != m for t, m in zip(twins, muscles))} ..._l twins of their names "
                f"(the rest under their own names)"
            )
    columns = selected_muscles(muscles, args.muscles)
    picked = [muscles.index(m) for m in columns]
    estimates = [
        Estimate(e.quantity, e.unit, e.time, np.asarray(e.data)[:, picked]) for e in estimates
    ]
    _check_requested_span(args, data_span, [r for r in (labels, force_labels) if r is not None])
    references = {"activation": labels, "force": force_labels}
    comparisons = []
    for estimate in estimates:
        reference = references[estimate.quantity]
        if reference is None:
            continue
        scale, scale_source = _full_scale(estimate.quantity, columns, subject, reference, args)
        comparisons.append(
            compare(
                reference, estimate, columns, scale, scale_source, args.start, args.end, args.side
            )
        )
    notes.extend(_narrower_span(args, estimates[0]))
    emg = None
    if args.emg:
        emg = _compare_emg(args, estimates[0], columns, labels)
    return Evaluation(source, comparisons, emg, default_plot_muscles(columns, args.muscles), notes)


def write_outputs(evaluation: Evaluation, args: argparse.Namespace) -> list[Path]:
    """The --json and --plot files; each written whole or not at all."""
    if args.plot:
        formats = figure_formats()
        suffix = Path(args.plot).suffix.lower()
        if suffix.lstrip(".") not in formats:
            what = suffix or "a name without an extension"
            raise EvaluationError(
                f"--plot {args.plot}: matplotlib cannot write {what}; end the name with one "
                f"of .{', .'.join(formats)}"
            )
    written = []
    if args.json:
        path = Path(args.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(to_json(evaluation), indent=2, allow_nan=False) + "\n")
        tmp.replace(path)
        written.append(path)
    if args.plot:
        cycle = tuple(args.cycle) if args.cycle else None
        extra = (
            [emg_panels(evaluation.emg, evaluation.plot_muscles, cycle)] if evaluation.emg else []
        )
        written.extend(
            plot_comparison(
                args.plot,
                [(c.quantity, c.unit, c.series, c.scores) for c in evaluation.comparisons],
                cycle_s=cycle,
                title=evaluation.source,
                muscles=evaluation.plot_muscles,
                extra_blocks=extra,
            )
            if evaluation.comparisons or extra
            else []
        )
    return written


def _compare_emg(
    args, activation: Estimate, columns: tuple[str, ...], labels: Storage | None
) -> EmgComparison:
    settings = EmgSettings(
        raw=args.emg_raw,
        band_hz=tuple(args.emg_band),
        envelope_hz=args.emg_envelope,
        max_lag_ms=args.emg_lag,
        side=args.side,
    )
    recording = load_emg(args.emg, settings)
    check_span(args.start, args.end, (recording.time[0], recording.time[-1]), f"EMG {args.emg}")
    muscle_of, left_out = map_channels(
        recording.channels, columns, args.side, read_map(args.emg_map), recording.path
    )
    estimate = {m: activation.data[:, columns.index(m)] for m in muscle_of.values()}
    reference = None
    if labels is not None:
        names = dict(zip(columns, reference_columns(labels, columns, args.side)))
        reference = {m: labels.column(names[m]) for m in muscle_of.values()}
    return compare_emg(
        recording,
        muscle_of,
        left_out,
        activation.time,
        estimate,
        labels.time if labels is not None else None,
        reference,
        settings,
        args.start,
        args.end,
    )


def _full_scale(
    quantity: str, columns: tuple[str, ...], subject, reference: Storage, args
) -> tuple[np.ndarray | float, str]:
    if quantity == "activation":
        return 1.0, "1"
    if subject is not None:
        nominal = {m.name: m.max_isometric_force for m in subject.muscles}
        if all(c in nominal for c in columns):
            return np.array([nominal[c] for c in columns]), "the maximum isometric force (subject)"
    values = reference.columns_of(reference_columns(reference, columns, args.side))
    peak = np.abs(values).max(axis=0)
    source = "the reference's peak (--subject for the maximum isometric force)"
    return np.where(peak > 0, peak, 1.0), source


def _check_requested_span(
    args, data_span: tuple[float, float] | None, references: list[Storage]
) -> None:
    """--start/--end within the data: every reference and, for a network, its IK."""
    if args.start is None and args.end is None:
        return
    if data_span is not None:
        check_span(args.start, args.end, data_span, f"the IK {args.ik}")
    for reference in references:
        span = (reference.time[0], reference.time[-1])
        check_span(args.start, args.end, span, f"the reference {reference.path}")


def _narrower_span(args, estimate: Estimate) -> list[str]:
    """Where the estimate starts after --start or ends before --end: one line saying so (a
    network's first answer comes one window after its input's start)."""
    notes = []
    if args.start is not None and estimate.time[0] > args.start + 1e-6:
        notes.append(
            f"scored from {estimate.time[0]:.3f} s, the estimate's first sample "
            f"(--start {args.start:g} s)"
        )
    if args.end is not None and estimate.time[-1] < args.end - 1e-6:
        notes.append(
            f"scored up to {estimate.time[-1]:.3f} s, the estimate's last sample "
            f"(--end {args.end:g} s)"
        )
    return notes


def _cell(value: float) -> str:
    return f"{value:.3f}" if np.isfinite(value) else "-"


if __name__ == "__main__":  # python -m train.evaluate: the same command as train.cli.evaluate
    from train.cli.evaluate import main

    raise SystemExit(main())
