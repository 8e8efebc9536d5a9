"""EMG envelopes, and how closely estimated activations follow them (``train-eval --emg``).

Static optimisation and the label-free network both estimate activations no one
measured; EMG is what the muscles did. Its amplitude depends on electrodes and skin,
so the score is the shape alone: Pearson's r between a muscle's EMG envelope and its
estimated activation over the scored span, optionally at the best lag within
+-``max_lag_ms`` (reported: positive means the estimate follows the EMG, as force
follows excitation by an electromechanical delay of tens of ms).

Input: an OpenSim .sto/.mot or a CSV (header row: a time column ``time``, ``t`` or
``timestamp`` in s, then one column per channel) of envelopes, or of raw EMG with
``raw`` (``--emg-raw``), which becomes an envelope here with defaults from the
surface-EMG literature:

- band-pass 20-450 Hz, 4th-order Butterworth run forwards and backwards: a 20 Hz corner
  removes movement artefact and 450 Hz keeps the signal's band (De Luca et al. 2010,
  J. Biomech. 43:1573; SENIAM);
- full-wave rectification;
- low-pass 6 Hz, 2nd-order Butterworth run forwards and backwards: a linear envelope
  that follows the timing of gait's muscle activity (Winter, Biomechanics and Motor
  Control of Human Movement, 2009, ch. 10).

Raw EMG is resampled to its mean rate first when its time steps vary; a rate whose
Nyquist frequency is not above the band's top is refused (give ``band_hz``).

Channels become muscles by ``--emg-map map.json`` ({"channel": "muscle", ...}, with the
estimate's muscle names; null skips a channel), else by their names: a side word or
letter at either end (R, L, right, left, also glued on: RTA) and a muscle name or
common abbreviation (``MUSCLE_ALIASES``: tibialis anterior / TA -> tib_ant, medial
gastrocnemius / MG -> med_gas, ...), matched against the estimated muscles' names
without their side suffix. Channels of the other leg, and channels naming no estimated
muscle, are listed and left out.
"""

from __future__ import annotations

import csv
import json
import math
import re
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from firmware_bridge.command_line import PATH_ERRORS
from train.metrics import pearson_r
from train.opensim_io import StorageError, read_storage
from train.options import EMG_BAND_HZ, EMG_ENVELOPE_HZ
from train.plots import EMG_STYLE, PREDICTION_STYLE, REFERENCE_STYLE, Panel, gait_cycle_axis

TIME_COLUMNS = ("time", "t", "timestamp")
GRID_STEP_S = 0.001
"""Both series are compared on a 1 ms grid; lags are searched in 1 ms steps."""

MUSCLE_ALIASES = {
    "tib_ant": ("tibialisanterior", "tibant", "ta", "tibialis", "tibialisant"),
    "soleus": ("soleus", "sol"),
    "med_gas": ("gastrocnemiusmedialis", "medialgastrocnemius", "gastrocnemiusmedial",
                "gastrocmedialis", "gasmed", "medgas", "gastrocmed", "medgastroc", "mg"),
    "lat_gas": ("gastrocnemiuslateralis", "lateralgastrocnemius", "gastrocnemiuslateral",
                "gastroclateralis", "gaslat", "latgas", "gastroclat", "latgastroc", "lg"),
    "rect_fem": ("rectusfemoris", "rectfem", "recfem", "rf"),
    "vas_lat": ("vastuslateralis", "vaslat", "vl"),
    "vas_med": ("vastusmedialis", "vasmed", "vm"),
    "vas_int": ("vastusintermedius", "vasint", "vi"),
    "bifemlh": ("bicepsfemoris", "bicepsfemorislonghead", "bicepsfemorislongus", "bflh",
                "bf", "bifem", "bifemlh"),
    "bifemsh": ("bicepsfemorisshorthead", "bfsh", "bifemsh"),
    "semiten": ("semitendinosus", "semiten", "st"),
    "semimem": ("semimembranosus", "semimem", "sm"),
    "glut_max2": ("gluteusmaximus", "glutmax", "gmax"),
    "glut_med2": ("gluteusmedius", "glutmed", "gmed"),
    "tfl": ("tensorfasciaelatae", "tensorfascialatae", "tfl"),
    "psoas": ("psoas", "iliopsoas"),
    "iliacus": ("iliacus",),
    "add_long": ("adductorlongus", "addlong"),
    "add_mag2": ("adductormagnus", "addmag"),
    "per_long": ("peroneuslongus", "fibularislongus", "perlong", "pl"),
    "sar": ("sartorius", "sart"),
    "grac": ("gracilis", "grac"),
}  # fmt: skip
"""gait2392 muscle (without side) -> channel names, lower case, letters only."""
_ALIAS_TO_MUSCLE = {alias: muscle for muscle, names in MUSCLE_ALIASES.items() for alias in names}
_SIDE_WORDS = {"r": "r", "right": "r", "rt": "r", "l": "l", "left": "l", "lt": "l"}
_NOISE_WORDS = frozenset({"emg", "env", "envelope", "raw", "rms", "filtered", "norm", "muscle"})


class EmgError(ValueError):
    """EMG that cannot be read or matched; the message names the file, channel and fix."""


EMG_ERRORS: tuple[type[Exception], ...] = (EmgError, StorageError, *PATH_ERRORS)


@dataclass(frozen=True)
class EmgSettings:
    """How EMG is read and scored (module doc for the defaults)."""

    raw: bool = False
    band_hz: tuple[float, float] = EMG_BAND_HZ
    band_order: int = 4
    envelope_hz: float = EMG_ENVELOPE_HZ
    envelope_order: int = 2
    max_lag_ms: float = 0.0
    side: str = "r"

    def __post_init__(self) -> None:
        lo, hi = self.band_hz
        if not 0 < lo < hi:
            raise EmgError(f"--emg-band must be 0 < low < high Hz, got {lo:g} {hi:g}")
        if not self.envelope_hz > 0:
            raise EmgError(f"--emg-envelope must be > 0 Hz, got {self.envelope_hz:g}")
        if not 0 <= self.max_lag_ms <= 1000:
            raise EmgError(f"--emg-lag must be 0-1000 ms, got {self.max_lag_ms:g}")


@dataclass(frozen=True)
class EmgRecording:
    """EMG envelopes ``data`` (N, C) of ``channels`` at ``time`` (N,) s, from ``path``."""

    path: str
    time: np.ndarray
    channels: tuple[str, ...]
    data: np.ndarray


@dataclass(frozen=True)
class EmgMuscle:
    """One muscle's EMG score: r (and lag in ms) of the estimate, and of the reference."""

    muscle: str
    channel: str
    r: float
    lag_ms: float
    reference_r: float | None = None
    reference_lag_ms: float | None = None


@dataclass(frozen=True)
class EmgComparison:
    """Per-muscle scores, the curves on the comparison grid, and what was left out."""

    path: str
    scores: tuple[EmgMuscle, ...]
    time: np.ndarray
    envelope: dict[str, np.ndarray]
    estimate: dict[str, np.ndarray]
    reference: dict[str, np.ndarray]
    left_out: tuple[str, ...]
    settings: dict

    def to_dict(self) -> dict:
        return {
            s.muscle: {
                "r": _json(s.r),
                "lag_ms": s.lag_ms,
                "channel": s.channel,
                **(
                    {"reference_r": _json(s.reference_r), "reference_lag_ms": s.reference_lag_ms}
                    if s.reference_r is not None or s.reference_lag_ms is not None
                    else {}
                ),
            }
            for s in self.scores
        }


# --- reading ------------------------------------------------------------------------------


def read_emg(path: str | Path) -> EmgRecording:
    """EMG channels of an OpenSim storage or a CSV file (module doc)."""
    path = Path(path)
    if path.suffix.lower() in (".sto", ".mot"):
        storage = read_storage(path, angles_in_degrees=False)
        return EmgRecording(str(path), storage.time, storage.columns, storage.data)
    try:
        with path.open(newline="") as f:
            rows = [r for r in csv.reader(f) if r and any(c.strip() for c in r)]
    except OSError as exc:
        raise EmgError(f"cannot read EMG file {path}: {exc.strerror}") from None
    if len(rows) < 3:
        raise EmgError(f"EMG file {path}: expected a header row and at least 2 data rows")
    header = [h.strip() for h in rows[0]]
    if header[0].lower() not in TIME_COLUMNS:
        raise EmgError(
            f"EMG file {path}: the first column is {header[0]!r}; expected a time column "
            f"({', '.join(TIME_COLUMNS)}) in s, then one column per channel"
        )
    values = np.empty((len(rows) - 1, len(header)))
    for n, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            raise EmgError(f"EMG file {path} line {n}: {len(row)} values, header has {len(header)}")
        try:
            values[n - 2] = [float(v) for v in row]
        except ValueError:
            raise EmgError(f"EMG file {path} line {n}: a value is not a number: {row}") from None
    time = values[:, 0]
    if not np.all(np.isfinite(values)) or np.any(np.diff(time) <= 0):
        raise EmgError(f"EMG file {path}: values must be finite and time strictly increasing (s)")
    return EmgRecording(str(path), time, tuple(header[1:]), values[:, 1:])


def envelope(
    time: np.ndarray, raw: np.ndarray, settings: EmgSettings, path: str = ""
) -> tuple[np.ndarray, np.ndarray]:
    """(time, envelope) of raw EMG (N, C): band-pass, rectify, low-pass (module doc)."""
    from scipy.signal import butter, sosfiltfilt

    rate = (time.size - 1) / (time[-1] - time[0])
    steps = np.diff(time)
    if steps.max() - steps.min() > 0.01 / rate:
        uniform = time[0] + np.arange(time.size) / rate
        raw = np.column_stack([np.interp(uniform, time, raw[:, c]) for c in range(raw.shape[1])])
        time = uniform
    lo, hi = settings.band_hz
    if not hi < rate / 2:
        raise EmgError(
            f"raw EMG {path} is sampled at {rate:.0f} Hz, too slow for a band-pass up to "
            f"{hi:g} Hz (Nyquist {rate / 2:.0f} Hz): give --emg-band {lo:g} {0.45 * rate:.0f} "
            "or envelopes without --emg-raw"
        )
    band = butter(settings.band_order, (lo, hi), btype="bandpass", fs=rate, output="sos")
    smooth = butter(
        settings.envelope_order, settings.envelope_hz, btype="low", fs=rate, output="sos"
    )
    return time, sosfiltfilt(smooth, np.abs(sosfiltfilt(band, raw, axis=0)), axis=0)


# --- channels -> muscles -----------------------------------------------------------------


def channel_muscle(channel: str, muscles: tuple[str, ...], side: str) -> tuple[str | None, str]:
    """(estimated muscle or None, why not) for a channel name (module doc)."""
    tokens = [t for t in re.split(r"[^a-z]+", channel.lower()) if t and t not in _NOISE_WORDS]
    channel_side = None
    for end in (0, -1):
        if len(tokens) > 1 and tokens[end] in _SIDE_WORDS:
            channel_side = _SIDE_WORDS[tokens.pop(end)]
            break
    key = "".join(tokens)
    if key not in _ALIAS_TO_MUSCLE and channel_side is None:
        for word, word_side in _SIDE_WORDS.items():
            glued = (key[len(word) :] if key.startswith(word) else None,
                     key[: -len(word)] if key.endswith(word) else None)  # fmt: skip
            for rest in glued:
                if rest and rest in _ALIAS_TO_MUSCLE:
                    key, channel_side = rest, word_side
                    break
            if channel_side is not None:
                break
    base = _ALIAS_TO_MUSCLE.get(key)
    if base is None:
        return None, "no known muscle name"
    if channel_side is not None and channel_side != side:
        return None, "the other leg"
    for name in muscles:
        if _without_side(name) == base:
            return name, ""
    return None, f"{base} is not an estimated muscle"


def map_channels(
    channels: tuple[str, ...], muscles: tuple[str, ...], side: str, mapping: dict | None, path: str
) -> tuple[dict[str, str], list[str]]:
    """({channel: muscle}, left-out lines) by ``mapping`` (--emg-map) or by name."""
    left_out = []
    if mapping is not None:
        missing = [c for c in mapping if c not in channels]
        unknown = [m for m in mapping.values() if m is not None and m not in muscles]
        if missing or unknown:
            problems = []
            if missing:
                problems.append(f"channels {missing} are not in {path} ({list(channels)})")
            if unknown:
                problems.append(f"muscles {unknown} are not estimated ({list(muscles)})")
            raise EmgError(f"--emg-map: {'; '.join(problems)}")
        chosen = {c: m for c, m in mapping.items() if m is not None}
        left_out = [f"{c} (not in the map)" for c in channels if c not in mapping]
    else:
        chosen = {}
        for channel in channels:
            muscle, why = channel_muscle(channel, muscles, side)
            if muscle is None:
                left_out.append(f"{channel} ({why})")
            elif muscle in chosen.values():
                left_out.append(f"{channel} (a second channel for {muscle})")
            else:
                chosen[channel] = muscle
    if not chosen:
        raise EmgError(
            f"no channel of {path} names an estimated muscle ({', '.join(left_out)}); give "
            '--emg-map map.json, e.g. {"' + channels[0] + '": "' + muscles[0] + '"}'
        )
    return chosen, left_out


def load_emg(path: str | Path, settings: EmgSettings) -> EmgRecording:
    """``read_emg`` and, with ``settings.raw``, the envelope of each channel."""
    recording = read_emg(path)
    if not settings.raw:
        return recording
    time, data = envelope(recording.time, recording.data, settings, recording.path)
    return EmgRecording(recording.path, time, recording.channels, data)


def read_map(path: str | Path | None) -> dict | None:
    if path is None:
        return None
    try:
        mapping = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise EmgError(f"--emg-map {path}: {exc}") from None
    if not isinstance(mapping, dict) or not all(
        isinstance(k, str) and (v is None or isinstance(v, str)) for k, v in mapping.items()
    ):
        raise EmgError(f'--emg-map {path}: expected {{"channel": "muscle" or null, ...}}')
    return mapping


# --- scoring -------------------------------------------------------------------------------


def lagged_r(
    time_emg: np.ndarray,
    emg: np.ndarray,
    time_est: np.ndarray,
    est: np.ndarray,
    span: tuple[float, float],
    max_lag_s: float,
) -> tuple[float, float, np.ndarray]:
    """(r, lag s, grid) of the lag in [-max_lag_s, max_lag_s] where estimate(t + lag)
    correlates best with emg(t), t on a 1 ms grid over ``span`` shortened by
    ``max_lag_s`` at both ends (every lag scores the same EMG samples)."""
    lo, hi = span[0] + max_lag_s, span[1] - max_lag_s
    if hi - lo < 10 * GRID_STEP_S:
        raise EmgError(
            f"the EMG and the estimate share only {span[0]:.3f}-{span[1]:.3f} s, too little "
            f"to score with a lag search of +-{1e3 * max_lag_s:g} ms"
        )
    grid = np.arange(lo, hi + GRID_STEP_S / 2, GRID_STEP_S)
    lags = GRID_STEP_S * np.arange(
        -round(max_lag_s / GRID_STEP_S), round(max_lag_s / GRID_STEP_S) + 1
    )
    reference = np.interp(grid, time_emg, emg)
    shifted = np.column_stack([np.interp(grid + lag, time_est, est) for lag in lags])
    r = pearson_r(np.repeat(reference[:, None], lags.size, axis=1), shifted)
    if not np.any(np.isfinite(r)):
        return math.nan, 0.0, grid
    best = int(np.nanargmax(r))
    return float(r[best]), float(lags[best]), grid


def compare_emg(
    recording: EmgRecording,
    muscle_of: dict[str, str],
    left_out: list[str],
    estimate_time: np.ndarray,
    estimate: dict[str, np.ndarray],
    reference_time: np.ndarray | None,
    reference: dict[str, np.ndarray] | None,
    settings: EmgSettings,
    start_s: float | None = None,
    end_s: float | None = None,
) -> EmgComparison:
    """r (and lag) of each mapped muscle's estimate, and of its reference, against its EMG."""
    lo = max(recording.time[0], estimate_time[0], -math.inf if start_s is None else start_s)
    hi = min(recording.time[-1], estimate_time[-1], math.inf if end_s is None else end_s)
    if reference_time is not None:
        lo, hi = max(lo, reference_time[0]), min(hi, reference_time[-1])
    max_lag = settings.max_lag_ms / 1e3
    scores, envelopes, estimates, references = [], {}, {}, {}
    for channel, muscle in muscle_of.items():
        emg = recording.data[:, recording.channels.index(channel)]
        r, lag, grid = lagged_r(
            recording.time, emg, estimate_time, estimate[muscle], (lo, hi), max_lag
        )
        reference_r = reference_lag = None
        if reference is not None:
            assert reference_time is not None  # a reference comes with its time axis
            reference_r, reference_lag, _ = lagged_r(
                recording.time, emg, reference_time, reference[muscle], (lo, hi), max_lag
            )
            references[muscle] = np.interp(grid, reference_time, reference[muscle])
            reference_lag = round(1e3 * reference_lag)
        scores.append(EmgMuscle(muscle, channel, r, round(1e3 * lag), reference_r, reference_lag))
        envelopes[muscle] = np.interp(grid, recording.time, emg)
        estimates[muscle] = np.interp(grid, estimate_time, estimate[muscle])
    return EmgComparison(
        path=recording.path,
        scores=tuple(scores),
        time=grid,
        envelope=envelopes,
        estimate=estimates,
        reference=references,
        left_out=tuple(left_out),
        settings={**asdict(settings), "span_s": [float(grid[0]), float(grid[-1])]},
    )


def format_emg_table(comparison: EmgComparison) -> str:
    """Per-muscle r (and lag) of the estimate and the reference against the EMG envelope."""
    with_reference = any(s.reference_r is not None for s in comparison.scores)
    width = max(len("mean"), *(len(s.muscle) for s in comparison.scores))
    channel_width = max(len("channel"), *(len(s.channel) for s in comparison.scores))
    header = f"{'muscle':<{width}}  {'channel':<{channel_width}}  {'EMG r':>6}  {'lag ms':>6}"
    if with_reference:
        header += f"  {'reference r':>11}  {'lag ms':>6}"
    lines = [header, "-" * len(header)]
    for s in comparison.scores:
        line = (
            f"{s.muscle:<{width}}  {s.channel:<{channel_width}}  {_cell(s.r):>6}  {s.lag_ms:>+6.0f}"
        )
        if with_reference:
            line += f"  {_cell(s.reference_r):>11}  {s.reference_lag_ms:>+6.0f}"
        lines.append(line)
    lines.append("-" * len(header))
    mean = _mean([s.r for s in comparison.scores])
    line = f"{'mean':<{width}}  {'':<{channel_width}}  {_cell(mean[0]):>6}  {'':>6}"
    if with_reference:
        reference_mean = _mean([s.reference_r for s in comparison.scores])
        line += f"  {_cell(reference_mean[0]):>11}"
    lines.append(line + f"   (over {mean[1]} muscles)")
    settings = comparison.settings
    lines.append(
        f"(EMG {comparison.path}: "
        + (
            f"raw, band-pass {settings['band_hz'][0]:g}-{settings['band_hz'][1]:g} Hz, "
            f"rectified, low-pass {settings['envelope_hz']:g} Hz"
            if settings["raw"]
            else "envelopes as given"
        )
        + (
            f"; best lag within +-{settings['max_lag_ms']:g} ms, + = estimate after EMG"
            if settings["max_lag_ms"]
            else "; lag 0 (--emg-lag to search)"
        )
        + f"; {settings['span_s'][0]:.3f}-{settings['span_s'][1]:.3f} s)"
    )
    if comparison.left_out:
        lines.append(f"(left out: {', '.join(comparison.left_out)})")
    return "\n".join(lines)


def emg_panels(
    comparison: EmgComparison, muscles: tuple[str, ...], cycle_s: tuple[float, float] | None
) -> list[Panel]:
    """A panel per muscle of ``muscles`` with EMG: envelope scaled to the estimate's peak,
    estimate and reference activation."""
    x = gait_cycle_axis(comparison.time, cycle_s)
    by_muscle = {s.muscle: s for s in comparison.scores}
    panels = []
    for muscle in [m for m in muscles if m in by_muscle] or list(by_muscle):
        s = by_muscle[muscle]
        estimate = comparison.estimate[muscle]
        emg = comparison.envelope[muscle]
        scale = np.max(np.abs(estimate)) / max(np.max(np.abs(emg)), 1e-30)
        curves = [("EMG envelope (scaled)", emg * scale, EMG_STYLE)]
        if muscle in comparison.reference:
            curves.append(("reference", comparison.reference[muscle], REFERENCE_STYLE))
        curves.append(("estimate", estimate, PREDICTION_STYLE))
        title = f"{muscle} vs EMG {s.channel}\nr {_cell(s.r)} at {s.lag_ms:+.0f} ms"
        if s.reference_r is not None:
            title += f", reference {_cell(s.reference_r)}"
        panels.append(Panel(title=title, unit="activation", x=x, curves=tuple(curves)))
    return panels


def _without_side(name: str) -> str:
    return name[:-2] if name.endswith(("_r", "_l")) else name


def _mean(values: list[float | None]) -> tuple[float, int]:
    finite = [v for v in values if v is not None and math.isfinite(v)]
    return (float(np.mean(finite)) if finite else math.nan), len(finite)


def _cell(value: float | None) -> str:
    return f"{value:.3f}" if value is not None and math.isfinite(value) else "-"


def _json(value: float | None) -> float | None:
    return float(value) if value is not None and math.isfinite(value) else None
