"""Reading and writing a versioned JSON file (subject.json, sensors.json)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")
# A list of numbers or strings this short is written on one line (vectors, exponent rows).
ONE_LINE_CHARS = 80


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
