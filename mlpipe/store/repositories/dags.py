"""DAGs seen while parsing, their pause flags, and import errors."""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    bindparam,
    delete,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.exc import IntegrityError

from mlpipe.store.dag_listing import DAG_COLUMNS, ListedDag, RecordedListing
from mlpipe.store.database import Database
from mlpipe.store.entities import (
    DagRecord,
)
from mlpipe.store.repositories.common import (
    DAG_FILE,
    DAG_TABLE,
    IMPORT_ERROR,
    record_of,
)
from mlpipe.store.repositories.common import (
    now as utc_now,
)
from mlpipe.store.rows import DagFileRow, DagRow, UTCDateTime


class DagRepository(Database):
    """DAGs seen while parsing, their pause flags, and import errors."""

    def sync_dags(self, files: dict[str, str], *, paused_on_creation: bool = False) -> None:
        """Record DAGs seen while parsing (``dag_id -> file``); new ones get a row.

        An upsert, so schedulers parsing the same folder at once never collide.
        """
        if not files:
            return
        now = utc_now()
        with self.writer.begin() as conn:
            conn.execute(_UPSERT_DAG, [
                {"dag_id": d, "fileloc": f, "paused": paused_on_creation, "at": now}
                for d, f in files.items()])

    def record_listing(self, stamps: dict[str, tuple[int, int]],
                       entries: list[dict[str, Any]]) -> None:
        """Record what ``mlpipe dags list`` shows without parsing: each DAG's listing fields
        (``dag_id``, ``schedule``, ``tags``, ``task_count``, ``owners``, ``file_mtime_ns``,
        ``file_size``; its row already recorded) and every file parsed, by
        ``fileloc -> (mtime_ns, size)``, replacing the files recorded before.

        Two schedulers recording the same scan at once collide on the file rows: the one that
        loses keeps the other's listing (its next scan records again if anything changed).
        """
        try:
            with self.writer.begin() as conn:
                conn.execute(delete(DagFileRow))
                if stamps:
                    conn.execute(insert(DagFileRow), [
                        {"fileloc": f, "mtime_ns": m, "size": s}
                        for f, (m, s) in stamps.items()])
                if entries:
                    conn.execute(_UPDATE_LISTING, [{f"b_{k}": v for k, v in e.items()}
                                                   for e in entries])
        except IntegrityError:
            return

    def recorded_listing(self) -> RecordedListing:
        """What the last recorded parse saw (``record_listing``), for ``mlpipe dags list``."""
        with self.engine.connect() as conn:
            files = {r.fileloc: (r.mtime_ns, r.size) for r in conn.execute(select(DAG_FILE))}
            dags = [ListedDag.of(tuple(r)) for r in conn.execute(
                select(*(DAG_TABLE.c[c] for c in DAG_COLUMNS)).order_by(DAG_TABLE.c.dag_id))]
            errors = {r.filename: r.error for r in conn.execute(select(IMPORT_ERROR))}
        return RecordedListing(files, dags, errors)

    def set_paused(self, dag_id: str, paused: bool) -> None:
        with self.writer.begin() as conn:
            changed = conn.execute(update(DAG_TABLE).where(DAG_TABLE.c.dag_id == dag_id)
                                   .values(is_paused=paused)).rowcount
            if not changed:
                conn.execute(insert(DAG_TABLE).values(dag_id=dag_id, is_paused=paused))

    def get_dag(self, dag_id: str) -> DagRecord | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(DAG_TABLE).where(DAG_TABLE.c.dag_id == dag_id)).first()
        return record_of(DagRecord, row) if row else None

    def list_dags(self) -> list[DagRecord]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(DAG_TABLE).order_by(DAG_TABLE.c.dag_id)).all()
        return [record_of(DagRecord, r) for r in rows]

    def paused_dag_ids(self) -> set[str]:
        """The ids of paused DAGs (the scheduler asks every tick: a few rows, not all)."""
        with self.engine.connect() as conn:
            return set(conn.execute(select(DAG_TABLE.c.dag_id).where(
                DAG_TABLE.c.is_paused.is_(True))).scalars())

    def replace_import_errors(self, errors: dict[str, str]) -> None:
        """Make the recorded import errors exactly ``errors`` (file -> error line)."""
        now = utc_now()
        with self.writer.begin() as conn:
            stale = delete(IMPORT_ERROR)
            if errors:
                stale = stale.where(IMPORT_ERROR.c.filename.not_in(list(errors)))
            conn.execute(stale)
            if errors:
                conn.execute(_UPSERT_IMPORT_ERROR, [
                    {"filename": f, "error": e, "at": now} for f, e in errors.items()])

    def import_errors(self) -> dict[str, str]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(IMPORT_ERROR)).all()
        return {r.filename: r.error for r in rows}


# Both SQLite (3.24+) and PostgreSQL (9.5+) speak these upserts.
_UPSERT_DAG = text(
    "INSERT INTO dag (dag_id, is_paused, fileloc, last_parsed_at) "
    "VALUES (:dag_id, :paused, :fileloc, :at) ON CONFLICT (dag_id) DO UPDATE SET "
    "fileloc = excluded.fileloc, last_parsed_at = excluded.last_parsed_at"
).bindparams(bindparam("at", type_=UTCDateTime()))


_UPDATE_LISTING = update(DagRow).where(DagRow.dag_id == bindparam("b_dag_id")).values(
    {name: bindparam(f"b_{name}") for name in (
        "schedule", "tags", "task_count", "owners", "file_mtime_ns", "file_size")})


_UPSERT_IMPORT_ERROR = text(
    "INSERT INTO import_error (filename, error, recorded_at) VALUES (:filename, :error, :at) "
    "ON CONFLICT (filename) DO UPDATE SET error = excluded.error, "
    "recorded_at = excluded.recorded_at"
).bindparams(bindparam("at", type_=UTCDateTime()))
