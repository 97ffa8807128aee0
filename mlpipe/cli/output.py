"""Printing tables or JSON, and turning errors into one line and an exit code."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from enum import StrEnum
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from mlpipe.errors import MlpipeError

# Piped output is not cut at 80 columns: tables stay whole for grep and for logs.
_WIDTH = None if sys.stdout.isatty() else 200
console = Console(highlight=False, soft_wrap=True, width=_WIDTH)
err_console = Console(stderr=True, highlight=False, soft_wrap=True, width=_WIDTH)


class OutputFormat(StrEnum):
    table = "table"
    json = "json"


def print_rows(rows: Sequence[dict[str, Any]], columns: Sequence[str], fmt: OutputFormat,
               title: str | None = None) -> None:
    """Rows as a rich table, or as a JSON list of objects with the same field names."""
    if fmt is OutputFormat.json:
        sys.stdout.write(json.dumps([{c: r.get(c) for c in columns} for r in rows],
                                    default=str, indent=2) + "\n")
        return
    table = Table(title=title)
    for i, column in enumerate(columns):
        if i == len(columns) - 1:  # the free-text column folds; the others never shrink
            table.add_column(column, overflow="fold")
        else:
            widest = max([len(column), *(len(str(r.get(column) or "")) for r in rows)])
            table.add_column(column, no_wrap=True, min_width=widest)
    for row in rows:
        table.add_row(*["" if row.get(c) is None else str(row.get(c)) for c in columns])
    console.print(table)


class State:
    verbose = False


@contextmanager
def user_errors() -> Iterator[None]:
    """Print a library error as one line and exit 1 (with the traceback under --verbose)."""
    try:
        yield
    except MlpipeError as exc:
        if State.verbose:
            err_console.print_exception()
        err_console.print(f"[bold red]error:[/] {exc}", markup=True)
        raise typer.Exit(1) from None
    except Exception as exc:
        from mlpipe.store.database import database_failure

        message = database_failure(exc)
        if message is None:
            raise
        if State.verbose:
            err_console.print_exception()
        err_console.print(f"[bold red]error:[/] {message}", markup=True, highlight=False)
        raise typer.Exit(1) from None


def guarded(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Decorator form of ``user_errors`` for command functions."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with user_errors():
            return fn(*args, **kwargs)

    return wrapper
