"""Reading a versioned JSON file (subject.json, sensors.json) into its validated object."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


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
