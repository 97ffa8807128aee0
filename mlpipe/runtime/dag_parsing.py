"""Trying DAG files in a child process first, so one file cannot hang or kill its reader.

A DAG file is arbitrary Python: it may sleep, loop, exit the process or crash the
interpreter at import. Before the reader (the scheduler, a CLI command) imports a new or
changed file, a forked child imports the changed files one after another and reports each
one's outcome on a pipe. A file that takes longer than ``MLPIPE_DAG_PARSE_TIMEOUT_S``, or
during whose import the child died, is an import error; the child is then replaced for the
files after it. Only the files that imported cleanly are then imported by the reader itself.

The fork inherits every module the reader already imported, so a check costs the file's own
import time plus one fork (a few ms) per batch, not a fresh interpreter.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection
from pathlib import Path

#: how a file is imported in the child: raises on an ordinary import error
Importer = Callable[[Path], object]


def check_files(paths: Sequence[Path], importer: Importer, *, timeout: float
                ) -> dict[Path, str]:
    """Import each file in a child process; the error of each file that failed, by path.

    Ordinary exceptions are left to the reader's own import (it formats them); this finds
    what an exception cannot report: a hang past ``timeout`` seconds or a dead process.
    """
    errors: dict[Path, str] = {}
    start = 0
    while start < len(paths):
        start = _check_batch(paths, start, importer, timeout, errors)
    return errors


def _check_batch(paths: Sequence[Path], start: int, importer: Importer, timeout: float,
                 errors: dict[Path, str]) -> int:
    """Check ``paths[start:]`` in one child; the index to go on from after a bad file."""
    context = multiprocessing.get_context("fork")
    reader, writer = context.Pipe(duplex=False)
    child = context.Process(target=_child, args=(paths[start:], importer, writer),
                            name="mlpipe-dag-parse", daemon=True)
    child.start()
    writer.close()
    try:
        for index in range(start, len(paths)):
            outcome = _next_outcome(reader, timeout)
            if outcome is None:  # hung: the child is killed below
                errors[paths[index]] = (f"timed out: importing the file took longer than "
                                        f"{timeout:g} s (MLPIPE_DAG_PARSE_TIMEOUT_S)")
                return index + 1
            if outcome == "died":
                child.join(5)
                errors[paths[index]] = _death(child.exitcode)
                return index + 1
        return len(paths)
    finally:
        reader.close()
        if child.is_alive():
            child.kill()
        child.join(5)


def _next_outcome(reader: Connection, timeout: float) -> str | None:
    """"ok", "died" (the pipe closed early) or None (nothing within ``timeout``)."""
    try:
        if not reader.poll(timeout):
            return None
        return str(reader.recv())
    except (EOFError, OSError):
        return "died"


def _death(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        return f"the process importing the file was killed by signal {-exitcode}"
    return (f"importing the file ended its process (exit code {exitcode}) before it "
            "finished; a DAG file must not call sys.exit or os._exit")


def _child(paths: Sequence[Path], importer: Importer, writer: Connection) -> None:
    try:
        for path in paths:
            # an ordinary exception is reported by the reader's own import, with its line
            with contextlib.suppress(Exception):
                importer(path)
            writer.send("ok")
    except BaseException:  # SystemExit at import: reported as the process ending early
        pass
    finally:
        writer.close()
        os._exit(0)
