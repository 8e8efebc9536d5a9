"""A progress bar where tqdm is installed, and nothing where it is not.

tqdm belongs to the desktop install (the ``train`` extra); the device install has
only the runtime's dependencies, and the device-side tools (``bridge-sim``,
``calib-subject --zero-port``) then run without a bar.
"""

from __future__ import annotations

from typing import Any


class _NoBar:
    n = 0.0

    def update(self, n: float = 1) -> None:
        self.n += n

    def close(self) -> None:
        """Nothing to close."""

    def __enter__(self):
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def progress_bar(**options: Any) -> Any:
    """``tqdm(**options)`` when tqdm is installed, else an object with the same ``update``,
    ``n``, ``close`` and context-manager use that shows nothing."""
    try:
        from tqdm import tqdm
    except ImportError:
        return _NoBar()
    return tqdm(**options)
