"""Read and write OpenSim storage files (.mot/.sto) and read ExternalLoads (.xml).

Storage files come in two header layouts, both ending with an ``endheader`` line
followed by one line of column labels (the first is ``time``) and the data rows:

- the old (OpenSim 1.x/2.x, SIMM) layout::

      subject01_walk1_ik.mot
      datacolumns 24
      datarows 211
      range 0.5 4.0
      endheader

- the current layout::

      Coordinates
      version=1
      nRows=211
      nColumns=24
      inDegrees=yes
      endheader

Values are separated by tabs or spaces. Angles of rotational coordinates are in
degrees or radians as the header's ``inDegrees`` says; a header that says radians
over values that are plainly degrees (a real case: RRA's ``_Kinematics_q.sto``)
is refused with an explanation unless the caller says which unit is right.

ExternalLoads files (the XML that tells OpenSim which GRF columns act on which
body) are read in their 2.x/3.x layout (``<ExternalLoads><objects><ExternalForce>``
with ``isDisabled`` and ``data_source_name``), their 4.x layout (the same
``ExternalForce`` objects with ``appliesForce``, ``<datafile>`` beside
``<objects>``) and the OpenSim 2.0 ``PrescribedForce`` layout (one named
function per column).
"""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = [
    "ExternalForceSpec",
    "ExternalLoadsError",
    "Storage",
    "StorageError",
    "is_rotational_column",
    "read_external_loads",
    "read_storage",
    "write_storage",
]

# Names of rotational coordinates in OpenSim's models (gait2392, Rajagopal,
# Hamner, arm26, ...): the word describing the rotation ends the name, before an
# optional side suffix. Translations end in _tx/_ty/_tz; columns of other
# quantities (forces, moments, activations, reserves) end in other words.
_ROTATIONAL_NAME = re.compile(
    r"(^|_)(tilt|list|rotation|flexion|extension|adduction|abduction|angle|bending|"
    r"elevation|elv|pro_sup|deviation|inversion|eversion)(_[rl])?$"
)

# A heading may wind past a full turn legitimately; every anatomical joint angle
# stays far inside one, so only the latter decide whether "radians" is believable.
_HEADING_COLUMNS = frozenset({"pelvis_rotation"})

# Beyond a full turn no anatomical joint angle can be in radians.
_MAX_PLAUSIBLE_RADIANS = 2.0 * math.pi

# Without an inDegrees line, a joint angle beyond π (180°) is taken as degrees:
# walking, running and most joint motion exceed 3° somewhere, no joint 180°.
_MAX_RADIANS_WITHOUT_HEADER = math.pi


class StorageError(ValueError):
    """An OpenSim storage file that cannot be read as it is; the message says why and what to do."""


class ExternalLoadsError(ValueError):
    """An ExternalLoads .xml that cannot be read; the message names the element and the file."""


def is_rotational_column(name: str) -> bool:
    """True for the name of a rotational coordinate (``knee_angle_r``, ``pelvis_tilt``, ...)."""
    return bool(_ROTATIONAL_NAME.search(name))


@dataclass(frozen=True, eq=False)
class Storage:
    """One OpenSim storage file in memory.

    ``time`` (N,) s, strictly increasing; ``columns`` the labels after ``time``;
    ``data`` (N, C) as stored (rotational columns in degrees when ``in_degrees``);
    ``in_degrees`` the unit of the rotational columns after any override;
    ``header`` the header's key/values (``name``, ``version``, ``nRows``, ``inDegrees``,
    ``datacolumns``, ``range``, ... as written) and ``description`` (its free text).
    """

    time: np.ndarray
    columns: tuple[str, ...]
    data: np.ndarray
    in_degrees: bool
    header: dict[str, str] = field(default_factory=dict)
    path: str = ""

    @property
    def name(self) -> str:
        return self.header.get("name", "")

    @property
    def rate_hz(self) -> float:
        """Mean sample rate (Hz) over the file."""
        if len(self.time) < 2:
            raise StorageError(f"{self.path}: one row has no sample rate")
        return (len(self.time) - 1) / float(self.time[-1] - self.time[0])

    def has_column(self, name: str) -> bool:
        return name in self.columns

    def column(self, name: str) -> np.ndarray:
        """The column ``name`` (N,) as stored; a missing name raises StorageError listing
        the available ones."""
        return self.data[:, self._index(name)]

    def columns_of(self, names: list[str] | tuple[str, ...]) -> np.ndarray:
        """Several columns (N, len(names)) as stored; all missing names are reported at once."""
        missing = [n for n in names if n not in self.columns]
        if missing:
            raise StorageError(self._missing_message(missing))
        return self.data[:, [self.columns.index(n) for n in names]]

    def column_radians(self, name: str) -> np.ndarray:
        """A rotational column (N,) in radians whatever the file's unit."""
        if not is_rotational_column(name):
            raise StorageError(
                f"{self.path}: column {name!r} is not a rotational coordinate; "
                "only angles convert to radians"
            )
        values = self.column(name)
        return np.deg2rad(values) if self.in_degrees else values.copy()

    def angles_radians(self, names: list[str] | tuple[str, ...]) -> np.ndarray:
        """Several rotational columns (N, len(names)) in radians."""
        values = self.columns_of(names)
        not_angles = [n for n in names if not is_rotational_column(n)]
        if not_angles:
            raise StorageError(
                f"{self.path}: {', '.join(not_angles)} are not rotational coordinates; "
                "only angles convert to radians"
            )
        return np.deg2rad(values) if self.in_degrees else values.copy()

    def _index(self, name: str) -> int:
        try:
            return self.columns.index(name)
        except ValueError:
            raise StorageError(self._missing_message([name])) from None

    def _missing_message(self, missing: list[str]) -> str:
        shown = ", ".join(self.columns[:40]) + (" ..." if len(self.columns) > 40 else "")
        return (
            f"{self.path}: missing column(s) {', '.join(repr(m) for m in missing)}; "
            f"the file has: {shown}"
        )


def read_storage(path: str | Path, angles_in_degrees: bool | None = None) -> Storage:
    """Read an OpenSim .mot/.sto file (old or current header; tabs or spaces).

    ``angles_in_degrees``: None trusts the header's ``inDegrees`` but refuses a
    header saying radians over rotational coordinates whose values exceed a full
    turn (plainly degrees); without an ``inDegrees`` line the unit is inferred
    from the magnitudes. True or False overrides the header for files known to lie.

    Raises StorageError for an empty or truncated file, a missing ``endheader``
    or ``time`` column, rows of the wrong width, non-numeric values, NaN
    (column and row named), time that does not strictly increase (row named),
    and implausible units.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise StorageError(f"{path}: cannot read the storage file ({exc.strerror})") from None
    lines = text.splitlines()
    if not any(line.strip() for line in lines):
        raise StorageError(f"{path}: the file is empty")
    end = _find_endheader(lines, path)
    header = _parse_header(lines[:end])

    label_line = end + 1
    while label_line < len(lines) and not lines[label_line].strip():
        label_line += 1
    if label_line >= len(lines):
        raise StorageError(f"{path}: no column labels after 'endheader'")
    labels = lines[label_line].split()
    if not labels or labels[0].lower() != "time":
        raise StorageError(
            f"{path}: the first column label is {labels[0]!r} (line {label_line + 1}); "
            "OpenSim storage files start with a 'time' column"
        )
    columns = tuple(labels[1:])
    duplicates = sorted({c for c in columns if columns.count(c) > 1})
    if duplicates:
        raise StorageError(f"{path}: duplicate column label(s) {', '.join(duplicates)}")

    values = _parse_rows(lines, label_line + 1, labels, path)
    if values.shape[0] == 0:
        raise StorageError(f"{path}: the header and labels are there but no data rows")
    _check_row_count(header, values.shape[0], path)
    time = values[:, 0].copy()
    data = values[:, 1:].copy()
    _check_finite(time, data, labels, path)
    _check_monotonic(time, path)

    in_degrees = _decide_units(header, columns, data, angles_in_degrees, path)
    return Storage(
        time=time, columns=columns, data=data, in_degrees=in_degrees, header=header, path=str(path)
    )


def write_storage(
    path: str | Path,
    time: np.ndarray,
    columns: list[str] | tuple[str, ...],
    data: np.ndarray,
    name: str = "",
    in_degrees: bool = False,
    description: str = "",
) -> Path:
    """Write an OpenSim storage file in the current layout (version=1, tab-separated).

    ``time`` (N,) s strictly increasing; ``data`` (N, C) in the units the header
    states (``in_degrees`` for rotational columns); values written with 15
    significant digits, so a round trip keeps float64 to ~1e-15 relative.
    """
    path = Path(path)
    time = np.asarray(time, dtype=np.float64).reshape(-1)
    data = np.asarray(data, dtype=np.float64)
    if data.ndim == 1:
        data = data[:, None]
    columns = tuple(columns)
    if data.shape != (time.shape[0], len(columns)):
        raise StorageError(
            f"write_storage({path}): data has shape {data.shape}, expected "
            f"({time.shape[0]}, {len(columns)}) for {time.shape[0]} times and "
            f"{len(columns)} columns"
        )
    bad = [c for c in columns if not c or any(ch.isspace() for ch in c)]
    if bad:
        raise StorageError(
            f"write_storage({path}): column labels must be non-empty without spaces: {bad}"
        )
    _check_finite(time, data, ("time", *columns), path)
    _check_monotonic(time, path)

    header = [
        name or path.stem,
        "version=1",
        f"nRows={time.shape[0]}",
        f"nColumns={len(columns) + 1}",
        f"inDegrees={'yes' if in_degrees else 'no'}",
    ]
    if description:
        header.extend(["", *description.splitlines(), ""])
    header.append("endheader")
    rows = np.column_stack([time, data])
    body = "\n".join("\t".join(f"{v:.15g}" for v in row) for row in rows)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "\n".join(header) + "\n" + "\t".join(("time", *columns)) + "\n" + body + "\n",
        encoding="utf-8",
    )
    return path


def _find_endheader(lines: list[str], path: Path) -> int:
    for i, line in enumerate(lines):
        if line.strip().lower() == "endheader":
            return i
    raise StorageError(
        f"{path}: no 'endheader' line; this is not an OpenSim .mot/.sto file "
        "(export it from OpenSim or add the header)"
    )


_OLD_HEADER_KEYS = ("name", "datacolumns", "datarows", "range")


def _parse_header(lines: list[str]) -> dict[str, str]:
    """Key/values of both layouts; the first free line is the name, other free text the
    description."""
    header: dict[str, str] = {}
    description: list[str] = []
    for raw in lines:
        line = raw.strip()
        if not line:
            continue
        if "=" in line and " " not in line.split("=", 1)[0].strip():
            key, value = line.split("=", 1)
            header[key.strip()] = value.strip()
            continue
        first, _, rest = line.partition(" ")
        if first.lower() in _OLD_HEADER_KEYS and rest.strip():
            header[first.lower()] = rest.strip()
            continue
        if "name" not in header and not description:
            header["name"] = line
        else:
            description.append(line)
    if description:
        header["description"] = "\n".join(description)
    return header


def _parse_rows(lines: list[str], start: int, labels: list[str], path: Path) -> np.ndarray:
    width = len(labels)
    rows: list[list[float]] = []
    for number in range(start, len(lines)):
        tokens = lines[number].split()
        if not tokens:
            continue
        if len(tokens) != width:
            raise StorageError(
                f"{path}: line {number + 1} has {len(tokens)} values, "
                f"the labels name {width} columns"
            )
        try:
            rows.append([float(t) for t in tokens])
        except ValueError:
            bad = next(i for i, t in enumerate(tokens) if not _is_float(t))
            raise StorageError(
                f"{path}: line {number + 1}, column {labels[bad]!r}: "
                f"{tokens[bad]!r} is not a number"
            ) from None
    return np.asarray(rows, dtype=np.float64).reshape(len(rows), width)


def _is_float(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


def _check_row_count(header: dict[str, str], n_rows: int, path: Path) -> None:
    for key in ("nRows", "datarows"):
        if key in header:
            try:
                declared = int(header[key])
            except ValueError:
                raise StorageError(
                    f"{path}: header {key}={header[key]!r} is not an integer"
                ) from None
            if declared != n_rows:
                raise StorageError(
                    f"{path}: the header says {key}={declared} "
                    f"but the file has {n_rows} data rows; "
                    "the file may be truncated or edited by hand (fix the header or the data)"
                )


def _check_finite(time: np.ndarray, data: np.ndarray, labels, path: Path) -> None:
    if not np.all(np.isfinite(time)):
        row = int(np.flatnonzero(~np.isfinite(time))[0])
        raise StorageError(f"{path}: time is not finite at data row {row}")
    bad = ~np.isfinite(data)
    if bad.any():
        row, col = (int(i) for i in np.argwhere(bad)[0])
        count = int(bad.sum())
        raise StorageError(
            f"{path}: column {labels[col + 1]!r} is NaN/inf at data row {row} "
            f"(t = {time[row]:.6g} s)"
            f"; {count} value(s) in all. Fill or trim the gap before using the file"
        )


def _check_monotonic(time: np.ndarray, path: Path) -> None:
    steps = np.diff(time)
    if np.any(steps <= 0):
        row = int(np.flatnonzero(steps <= 0)[0]) + 1
        raise StorageError(
            f"{path}: time does not increase at data row {row} "
            f"(t = {time[row - 1]:.6g} s then {time[row]:.6g} s); "
            "sort the rows or remove the repeated samples"
        )


def _decide_units(
    header: dict[str, str],
    columns: tuple[str, ...],
    data: np.ndarray,
    override: bool | None,
    path: Path,
) -> bool:
    if override is not None:
        return bool(override)
    joints = [
        i for i, c in enumerate(columns) if is_rotational_column(c) and c not in _HEADING_COLUMNS
    ]
    largest = float(np.max(np.abs(data[:, joints]))) if joints else 0.0
    stated = header.get("inDegrees")
    if stated is None:
        return largest > _MAX_RADIANS_WITHOUT_HEADER
    if stated.strip().lower() in ("yes", "true", "1"):
        return True
    if stated.strip().lower() not in ("no", "false", "0"):
        raise StorageError(f"{path}: header inDegrees={stated!r}; expected yes or no")
    if largest > _MAX_PLAUSIBLE_RADIANS:
        where = np.argwhere(np.abs(data[:, joints]) == largest)[0]
        column = columns[joints[int(where[1])]]
        raise StorageError(
            f"{path}: the header says inDegrees=no (radians) but {column} reaches "
            f"{largest:.4g}, beyond a full turn: the angles are plainly in degrees. "
            "Fix the header to inDegrees=yes, or pass --angles-in degrees (angles_in_degrees=True)"
        )
    return False


@dataclass(frozen=True)
class ExternalForceSpec:
    """One external force of an ExternalLoads file: which GRF columns act on which body, in
    which frame.

    ``force_columns``/``point_columns``/``torque_columns`` are the (x, y, z) column
    names in the data file (``force_identifier`` + x/y/z for ExternalForce);
    ``torque_columns`` is empty when the file names none. ``side`` is "r" or "l"
    for a foot body (calcn_*, talus_*, toes_*, foot_*), else "".
    """

    name: str
    applied_to_body: str
    force_expressed_in_body: str
    point_expressed_in_body: str
    force_identifier: str
    point_identifier: str
    torque_identifier: str
    force_columns: tuple[str, str, str]
    point_columns: tuple[str, str, str]
    torque_columns: tuple[str, ...]
    datafile: str
    enabled: bool = True

    @property
    def side(self) -> str:
        match = re.fullmatch(
            r"(calcn|talus|toes|foot|calc)_?([rl])", self.applied_to_body.strip().lower()
        )
        return match.group(2) if match else ""


def read_external_loads(path: str | Path) -> list[ExternalForceSpec]:
    """Read the ExternalForce (or 2.0 PrescribedForce) entries of an ExternalLoads .xml.

    ``datafile`` of each spec is the storage file its columns come from: the
    force's own ``data_source_name`` when it names a file, else the loads'
    ``<datafile>``, resolved relative to the .xml's folder.
    """
    path = Path(path)
    try:
        root = ET.parse(path).getroot()
    except OSError as exc:
        raise ExternalLoadsError(
            f"{path}: cannot read the ExternalLoads file ({exc.strerror})"
        ) from None
    except ET.ParseError as exc:
        raise ExternalLoadsError(f"{path}: not well-formed XML ({exc})") from None
    loads = root if root.tag == "ExternalLoads" else root.find(".//ExternalLoads")
    if loads is None:
        raise ExternalLoadsError(
            f"{path}: no <ExternalLoads> element; this is not an OpenSim ExternalLoads file"
        )
    datafile = _text(loads, "datafile")
    specs = [_external_force(e, datafile, path) for e in loads.iter("ExternalForce")]
    specs += [_prescribed_force(e, datafile, path) for e in loads.iter("PrescribedForce")]
    if not specs:
        raise ExternalLoadsError(
            f"{path}: <ExternalLoads> holds no ExternalForce or PrescribedForce"
        )
    return specs


def _text(element: ET.Element, tag: str, default: str = "") -> str:
    child = element.find(tag)
    if child is None or child.text is None:
        return default
    return child.text.strip()


def _resolve_datafile(name: str, xml_path: Path) -> str:
    if not name or name.lower() == "unassigned":
        return ""
    candidate = Path(name)
    return str(candidate if candidate.is_absolute() else xml_path.parent / candidate)


def _flag(element: ET.Element, tag: str) -> bool | None:
    value = _text(element, tag)
    if not value:
        return None
    return value.lower() in ("true", "1", "yes")


def _external_force(element: ET.Element, datafile: str, path: Path) -> ExternalForceSpec:
    name = element.get("name", "")
    body = _text(element, "applied_to_body")
    force_id = _text(element, "force_identifier")
    point_id = _text(element, "point_identifier")
    torque_id = _text(element, "torque_identifier")
    if not body or not force_id:
        raise ExternalLoadsError(
            f"{path}: ExternalForce {name!r} needs <applied_to_body> and <force_identifier>"
        )
    source = _text(element, "data_source_name")
    own_file = source if Path(source).suffix.lower() in (".mot", ".sto") else ""
    disabled = _flag(element, "isDisabled")
    applies = _flag(element, "appliesForce")
    enabled = not disabled if disabled is not None else (applies if applies is not None else True)
    return ExternalForceSpec(
        name=name,
        applied_to_body=body,
        force_expressed_in_body=_text(element, "force_expressed_in_body", "ground"),
        point_expressed_in_body=_text(element, "point_expressed_in_body", "ground"),
        force_identifier=force_id,
        point_identifier=point_id,
        torque_identifier=torque_id,
        force_columns=_xyz(force_id),
        point_columns=_xyz(point_id) if point_id else ("", "", ""),
        torque_columns=_xyz(torque_id) if torque_id else (),
        datafile=_resolve_datafile(own_file or datafile, path),
        enabled=enabled,
    )


def _xyz(identifier: str) -> tuple[str, str, str]:
    return (identifier + "x", identifier + "y", identifier + "z")


def _prescribed_force(element: ET.Element, datafile: str, path: Path) -> ExternalForceSpec:
    """OpenSim 2.0: a PrescribedForce names its columns as the functions of three FunctionSets."""
    name = element.get("name", "")
    body = _text(element, "body")

    def function_names(set_name: str) -> tuple[str, ...]:
        for function_set in element.iter("FunctionSet"):
            if function_set.get("name") == set_name:
                objects = function_set.find("objects")
                return tuple(f.get("name", "") for f in (objects if objects is not None else []))
        return ()

    force = function_names("forceFunctions")
    point = function_names("pointFunctions")
    torque = function_names("torqueFunctions")
    if not body or len(force) != 3:
        raise ExternalLoadsError(
            f"{path}: PrescribedForce {name!r} needs <body> and three forceFunctions"
        )
    force_global = _flag(element, "forceIsGlobal")
    point_global = _flag(element, "pointIsGlobal")
    disabled = _flag(element, "isDisabled")
    return ExternalForceSpec(
        name=name,
        applied_to_body=body,
        force_expressed_in_body="ground" if force_global in (None, True) else body,
        point_expressed_in_body="ground" if point_global else body,
        force_identifier=_common_prefix(force),
        point_identifier=_common_prefix(point),
        torque_identifier=_common_prefix(torque),
        force_columns=force,
        point_columns=point if len(point) == 3 else ("", "", ""),
        torque_columns=torque if len(torque) == 3 else (),
        datafile=_resolve_datafile(datafile, path),
        enabled=not disabled if disabled is not None else True,
    )


def _common_prefix(names: tuple[str, ...]) -> str:
    if not names:
        return ""
    prefix = names[0]
    for other in names[1:]:
        while not other.startswith(prefix):
            prefix = prefix[:-1]
    return prefix
