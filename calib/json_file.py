"""Reading and writing a versioned JSON file (subject.json, sensors.json, a bundle's manifest).

``Fields`` reads parsed JSON one typed value at a time: each reader checks the
value's type and range and raises the caller's error class with a message that
names the JSON path (``muscles[3].path.coefficients[0]``), what was expected and
what was found; ``load_json_file`` adds the file's name in front.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")
# A list of numbers or strings this short is written on one line (vectors, exponent rows).
ONE_LINE_CHARS = 80
# A wrong value longer than this is shown cut, ending in "...".
SHOWN_CHARS = 60


def load_json_file(
    path: str | Path, from_dict: Callable[[Any], T], error: type[Exception], kind: str
) -> T:
    """``from_dict`` of the file's JSON content; an unreadable file, invalid JSON or a
    content ``from_dict`` refuses (with ``error``) is ``error`` naming the file.

    ``kind`` names the file in the message, e.g. "subject" for "cannot read subject file".
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except OSError as exc:
        raise error(f"cannot read {kind} file {path}: {exc.strerror}") from exc
    except json.JSONDecodeError as exc:
        raise error(f"{path} is not valid JSON: {exc}") from exc
    try:
        return from_dict(data)
    except error as exc:
        raise error(f"{path}: {exc}") from exc


def dumps_readable(data: Any) -> str:
    """JSON indented by two spaces, with short lists of scalars (a vector, a row) on one line."""
    return _dump(data, 0) + "\n"


def _dump(data: Any, depth: int) -> str:
    pad, inner = "  " * depth, "  " * (depth + 1)
    if isinstance(data, dict):
        if not data:
            return "{}"
        items = (f"{inner}{json.dumps(k)}: {_dump(v, depth + 1)}" for k, v in data.items())
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(data, (list, tuple)):
        one_line = json.dumps(list(data))
        if len(one_line) <= ONE_LINE_CHARS and not any(
            isinstance(v, (dict, list, tuple)) for v in data
        ):
            return one_line
        return "[\n" + ",\n".join(inner + _dump(v, depth + 1) for v in data) + "\n" + pad + "]"
    return json.dumps(data)


@dataclass(frozen=True)
class Messages:
    """How ``Fields`` words its errors: ``label`` names a JSON path (``{path}``); ``wrong``
    says what a value should be (``{label}``, ``{expected}``, ``{got}``)."""

    label: str = "field '{path}'"
    wrong: str = "{label}: expected {expected}, got {got}"


class Fields:
    """Typed reading of one JSON object or array, ``data``, at ``path`` in a file.

    Every reader takes a key (a name in an object, an index in an array), checks the
    value and returns it typed; a missing key or a wrong value raises ``error`` with a
    message naming the JSON path, what was expected and what was found (``messages``).
    ``mapping`` and ``sequence`` return the ``Fields`` of a nested object or array.
    """

    def __init__(
        self,
        data: Mapping[str, Any] | Sequence[Any],
        error: type[Exception],
        path: str = "",
        messages: Messages = Messages(),
    ) -> None:
        self.data = data
        self.error = error
        self.path = path
        self.messages = messages

    def __contains__(self, key: object) -> bool:
        return isinstance(self.data, Mapping) and key in self.data

    def __len__(self) -> int:
        return len(self.data)

    def path_of(self, key: str | int) -> str:
        """The JSON path of ``key`` here: ``a.b``, ``a[3]``, or ``a['file.pt2']`` for a key
        that is not an identifier."""
        if isinstance(key, int):
            return f"{self.path}[{key}]"
        if not key.isidentifier():
            return f"{self.path}[{key!r}]"
        return f"{self.path}.{key}" if self.path else key

    def label(self, key: str | int | None = None) -> str:
        """How messages name ``key`` (None: this object itself)."""
        return self.messages.label.format(path=self.path if key is None else self.path_of(key))

    def fail(self, key: str | int | None, expected: str, got: Any) -> Exception:
        """The error for a ``key`` (None: this object) whose value ``got`` is not ``expected``."""
        shown = repr(got)
        if len(shown) > SHOWN_CHARS:
            shown = shown[: SHOWN_CHARS - 3] + "..."
        return self.error(
            self.messages.wrong.format(label=self.label(key), expected=expected, got=shown)
        )

    def labelled(self, note: str) -> Fields:
        """The same data, its paths shown with ``note`` after this one's, e.g.
        ``muscles[3] (vas_lat_r).path``."""
        return Fields(self.data, self.error, f"{self.path} ({note})", self.messages)

    def only(self, allowed: Sequence[str], kind: str) -> None:
        """Refuse a key outside ``allowed`` (a typo, say): "... is not a ``kind`` field"."""
        unknown = sorted(set(self.data) - set(allowed)) if isinstance(self.data, Mapping) else []
        if unknown:
            raise self.error(
                f"{self.label(unknown[0])} is not a {kind} field; expected one of {list(allowed)}"
            )

    def as_dict(self) -> dict[str, Any]:
        """This JSON object as a plain dict (shallow copy); an array is an error."""
        if not isinstance(self.data, Mapping):
            raise self.fail(None, "a JSON object", self.data)
        return dict(self.data)

    def value(self, key: str | int) -> Any:
        """The raw value at ``key``; a missing key is an error."""
        if isinstance(self.data, Mapping):
            if not isinstance(key, str) or key not in self.data:
                raise self.error(f"{self.label(key)} is missing")
            return self.data[key]
        return self.data[int(key)]

    def get(self, key: str, default: Any = None) -> Any:
        """The raw value of an optional ``key`` of an object, ``default`` when absent."""
        return self.data.get(key, default) if isinstance(self.data, Mapping) else default

    def number(
        self,
        key: str | int,
        expected: str | None = None,
        *,
        unit: str = "",
        positive: bool = False,
        at_least: float | None = None,
        below: float | None = None,
    ) -> float:
        """A finite real number (not a boolean): > 0 with ``positive``, >= ``at_least``,
        < ``below``. ``expected`` words the expectation (default from the bounds, with
        ``unit`` in brackets)."""
        if expected is None:
            if positive:
                expected = "a positive number"
            elif at_least is not None:
                expected = f"a number >= {at_least:g}"
            else:
                expected = "a finite number"
            expected += f" ({unit})" if unit else ""
        value = self.value(key)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.fail(key, expected, value)
        if not math.isfinite(value):
            raise self.fail(key, expected + " (finite)", value)
        if (
            (positive and value <= 0)
            or (at_least is not None and value < at_least)
            or (below is not None and value >= below)
        ):
            raise self.fail(key, expected, value)
        return float(value)

    def integer(self, key: str | int, *, at_least: int | None = None) -> int:
        """An integer (not a boolean), >= ``at_least``."""
        value = self.value(key)
        if (
            isinstance(value, bool)
            or not isinstance(value, int)
            or (at_least is not None and value < at_least)
        ):
            expected = "an integer" + (f" >= {at_least}" if at_least is not None else "")
            raise self.fail(key, expected, value)
        return value

    def string(self, key: str | int, *, choices: Sequence[str] | None = None) -> str:
        """A non-empty string; with ``choices``, one of them."""
        value = self.value(key)
        if choices is not None and value not in choices:
            raise self.fail(key, f"one of {list(choices)}", value)
        if not isinstance(value, str) or not value:
            raise self.fail(key, "a non-empty string", value)
        return value

    def names(self, key: str | int) -> tuple[str, ...]:
        """A non-empty list of distinct non-empty strings."""
        value = self.value(key)
        if (
            not isinstance(value, list)
            or not value
            or not all(isinstance(v, str) and v for v in value)
            or len(set(value)) != len(value)
        ):
            raise self.fail(key, "a non-empty list of distinct names", value)
        return tuple(value)

    def vector(
        self, key: str | int, length: int, *, components: str = "", unit: str = ""
    ) -> tuple[float, ...]:
        """A list of ``length`` finite numbers, e.g. ``components`` "x, y, z" in ``unit``;
        a bad element is named by its index."""
        expected = f"a list of {length} finite numbers"
        expected += f" [{components}]" if components else ""
        expected += f" ({unit})" if unit else ""
        items = self.sequence(key, expected, length=length)
        return tuple(items.number(i, expected) for i in range(length))

    def mapping(
        self, key: str | int, *, allowed: Sequence[str] | None = None, kind: str = ""
    ) -> Fields:
        """The ``Fields`` of a JSON object; with ``allowed``, any other key is refused as
        not a ``kind`` field."""
        value = self.value(key)
        if not isinstance(value, Mapping):
            raise self.fail(key, "a JSON object", value)
        fields = Fields(value, self.error, self.path_of(key), self.messages)
        if allowed is not None:
            fields.only(allowed, kind)
        return fields

    def sequence(
        self, key: str | int, expected: str, *, length: int | None = None, non_empty: bool = False
    ) -> Fields:
        """The ``Fields`` of a JSON array (of ``length`` items; ``non_empty``); else the
        error says ``expected``."""
        value = self.value(key)
        if (
            not isinstance(value, (list, tuple))
            or (length is not None and len(value) != length)
            or (non_empty and not value)
        ):
            raise self.fail(key, expected, value)
        return Fields(value, self.error, self.path_of(key), self.messages)
