"""The recorded DAG listing read with the standard library's ``sqlite3``: ``mlpipe dags
list`` answers from it without SQLAlchemy, Alembic or the engine (a fresh process pays
their imports: most of a second on a loaded machine)."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: the columns of a recorded DAG, in the order both readers select them
DAG_COLUMNS = ("dag_id", "is_paused", "fileloc", "schedule", "tags", "task_count", "owners",
               "file_mtime_ns", "file_size")


@dataclass(frozen=True)
class ListedDag:
    """One DAG as the last recorded parse saw it."""

    dag_id: str
    is_paused: bool
    fileloc: str | None
    schedule: str | None
    tags: list[str]
    task_count: int | None
    owners: str | None
    stamp: tuple[int, int] | None  # its file's (mtime_ns, size) when parsed

    @classmethod
    def of(cls, row: Any) -> ListedDag:
        """From a row of ``DAG_COLUMNS``."""
        dag_id, paused, fileloc, schedule, tags, tasks, owners, mtime, size = row
        return cls(dag_id, bool(paused), fileloc, schedule, json.loads(tags) if tags else [],
                   tasks, owners, (mtime, size) if mtime is not None else None)


@dataclass(frozen=True)
class RecordedListing:
    """What the last recorded parse saw: files with their stamps, DAGs, import errors."""

    files: dict[str, tuple[int, int]]
    dags: list[ListedDag]
    import_errors: dict[str, str]

    def current(self, stamps: dict[str, tuple[int, int]]) -> list[ListedDag] | None:
        """The DAGs to list when the folder's files now have ``stamps``; None when a file
        was added, removed or changed since (the folder must be parsed again)."""
        if stamps != self.files:
            return None
        return [d for d in self.dags
                if d.fileloc is not None and d.stamp is not None
                and stamps.get(d.fileloc) == d.stamp]


_DAGS_SQL = f"SELECT {', '.join(DAG_COLUMNS)} FROM dag ORDER BY dag_id"
_FILES_SQL = "SELECT fileloc, mtime_ns, size FROM dag_file"
_ERRORS_SQL = "SELECT filename, error FROM import_error"


def read_sqlite_listing(path: Path) -> RecordedListing | None:
    """The listing recorded in the SQLite file ``path``, opened read-only; None when it
    cannot be read that way (no listing tables yet: an older schema, or locked)."""
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=5)
    except sqlite3.Error:
        return None
    try:
        files = {f: (m, s) for f, m, s in conn.execute(_FILES_SQL)}
        dags = [ListedDag.of(row) for row in conn.execute(_DAGS_SQL)]
        errors = dict(conn.execute(_ERRORS_SQL).fetchall())
    except sqlite3.Error:
        return None
    finally:
        conn.close()
    return RecordedListing(files, dags, errors)
