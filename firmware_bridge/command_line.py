"""The command-line convention every console script follows.

Every console script (calib-subject, train-*, edge-run, edge-bench, bridge-sim) builds
its parser with ``command_parser`` and runs its work with ``run_command``:

- exit 0: the work is done;
- exit 2, bad input: one line ``prog: error: message`` on stderr, argparse's own form
  (argparse's own errors add the usage line above it);
- exit 1, a failure of the program itself: one line ``prog: internal error: Type:
  message``; the traceback above it only with ``--debug``, an option every script has.

A script says what bad input is in two ways: it raises ``UsageError`` for what it checks
itself (options that do not go together, a value out of range), and it runs the work that
may raise its room's bad-input exceptions (``SubjectError``, ``BundleError``,
``TrialError``, ...: each message names the file, field or value and the fix) inside
``with bad_input(*types):``. The types are imported where the work is, after the
arguments are parsed, so ``--help`` answers without importing heavy modules. Any other
exception is a failure of the program. ``KeyboardInterrupt`` passes through untouched: a
script that answers Ctrl-C in its own way catches it itself.

This module lives in firmware_bridge because every room imports firmware_bridge (calib for
its port capture, edge for the wire, train through both), and this module imports nothing
of the project: any console script can use it without crossing a room's boundary.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

EXIT_OK = 0
EXIT_FAILURE = 1
"""A failure of the program itself (or a script's own documented failure, such as
edge-bench's failed verdict under ``--check``)."""
EXIT_BAD_INPUT = 2
"""argparse's own exit code for a usage error."""

PATH_ERRORS: tuple[type[OSError], ...] = (
    FileNotFoundError,
    FileExistsError,
    IsADirectoryError,
    NotADirectoryError,
    PermissionError,
)
"""The OSErrors a path given on the command line causes (missing, in the way, a folder
where a file is meant or the reverse, not permitted): bad input. Other OSErrors (a full
disk, a broken pipe, a device that failed) are failures."""


class UsageError(Exception):
    """Bad input: the message is the line printed after ``prog: error:``."""


def one_line(exc: BaseException) -> str:
    """``exc``'s message on one line; an OSError about a file as ``file: reason``."""
    if isinstance(exc, OSError) and exc.strerror and exc.filename is not None:
        text = f"{exc.filename}: {exc.strerror}"
    else:
        text = str(exc)
    return " ".join(text.split())


@contextmanager
def bad_input(*types: type[BaseException], prefix: str = "") -> Iterator[None]:
    """Within the block, an exception of ``types`` is bad input (a ``UsageError`` with its
    message on one line, after ``prefix``, e.g. "bundle: ", naming what was refused)."""
    try:
        yield
    except types as exc:
        raise UsageError(prefix + one_line(exc)) from exc


def command_parser(prog: str, **options: Any) -> argparse.ArgumentParser:
    """``argparse.ArgumentParser(prog=prog, **options)`` with the ``--debug`` option."""
    parser = argparse.ArgumentParser(prog=prog, **options)
    parser.add_argument(
        "--debug",
        action="store_true",
        help="on a failure of the program itself (exit code 1) print the traceback too; "
        "bad input (exit code 2) is one line either way",
    )
    return parser


def run_command(
    parser: argparse.ArgumentParser,
    work: Callable[[argparse.Namespace], int | None],
    argv: Sequence[str] | None = None,
) -> int:
    """Parse ``argv`` (default ``sys.argv[1:]``) and run ``work(args)``; returns the exit
    code: ``work``'s (None: 0), 2 for bad input, 1 for any other exception."""
    args = parser.parse_args(argv)
    try:
        code = work(args)
    except UsageError as exc:
        print(f"{parser.prog}: error: {one_line(exc)}", file=sys.stderr, flush=True)
        return EXIT_BAD_INPUT
    except Exception as exc:
        debug = bool(getattr(args, "debug", False))
        if debug:
            traceback.print_exc(file=sys.stderr)
        hint = "" if debug else " (--debug prints the traceback)"
        print(
            f"{parser.prog}: internal error: {type(exc).__name__}: {one_line(exc)}{hint}",
            file=sys.stderr,
            flush=True,
        )
        return EXIT_FAILURE
    return EXIT_OK if code is None else code
