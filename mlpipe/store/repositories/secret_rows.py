"""The rows of connections and variables, as stored (sealed or not): no cipher here.

``mlpipe.connections.metastore_backend`` seals and unseals the secret columns and turns
rows into ``Connection`` objects; this module only reads and writes the rows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

from sqlalchemy import Engine, Table, delete, insert, inspect, make_url, select, update
from sqlalchemy.exc import IntegrityError, OperationalError

from mlpipe.errors import ConnectionExistsError, StoreError
from mlpipe.store import database
from mlpipe.store.rows import ConnectionRow, VariableRow

__all__ = ["SecretRows", "open_secret_rows"]

_CONN = cast(Table, ConnectionRow.__table__)
_VAR = cast(Table, VariableRow.__table__)

#: ``(value, is_encrypted, kind, name) -> sealed value`` (see ``SecretRows.reseal_all``)
Resealer = Callable[[str, bool, str, str], str]


class SecretRows:
    """Connection and variable rows of one metadata database."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.writer = engine.execution_options(immediate=True)

    # -- connections -----------------------------------------------------------------------

    def insert_connection(self, values: dict[str, Any]) -> None:
        """A new connection row; ``ConnectionExistsError`` if the id is taken."""
        try:
            with self.writer.begin() as db:
                db.execute(insert(_CONN).values(**values))
        except IntegrityError:
            raise ConnectionExistsError(values["conn_id"]) from None

    def connection_row(self, conn_id: str) -> Any:
        with self.engine.connect() as db:
            return db.execute(select(_CONN).where(_CONN.c.conn_id == conn_id)).first()

    def connection_rows(self) -> list[Any]:
        with self.engine.connect() as db:
            return list(db.execute(select(_CONN).order_by(_CONN.c.conn_id)).all())

    def connection_ids(self) -> list[str]:
        with self.engine.connect() as db:
            return list(db.scalars(select(_CONN.c.conn_id).order_by(_CONN.c.conn_id)))

    def delete_connection(self, conn_id: str) -> bool:
        with self.writer.begin() as db:
            return bool(db.execute(delete(_CONN).where(_CONN.c.conn_id == conn_id)).rowcount)

    # -- variables -------------------------------------------------------------------------

    def upsert_variable(self, key: str, values: dict[str, Any]) -> None:
        """Create or replace a variable row."""
        for _ in range(2):  # a concurrent insert of the same key: update it the second time
            try:
                with self.writer.begin() as db:
                    if db.execute(update(_VAR).where(_VAR.c.key == key).values(**values)
                                  ).rowcount:
                        return
                    db.execute(insert(_VAR).values(key=key, **values))
                    return
            except IntegrityError:
                continue
        raise StoreError(f"variable {key!r} could not be written; try again")

    def variable_row(self, key: str) -> Any:
        with self.engine.connect() as db:
            return db.execute(select(_VAR).where(_VAR.c.key == key)).first()

    def variable_rows(self) -> list[Any]:
        with self.engine.connect() as db:
            return list(db.execute(select(_VAR).order_by(_VAR.c.key)).all())

    def variable_keys(self) -> list[str]:
        with self.engine.connect() as db:
            return list(db.scalars(select(_VAR.c.key).order_by(_VAR.c.key)))

    def delete_variable(self, key: str) -> bool:
        with self.writer.begin() as db:
            return bool(db.execute(delete(_VAR).where(_VAR.c.key == key)).rowcount)

    # -- key rotation ----------------------------------------------------------------------

    def reseal_all(self, reseal: Resealer) -> int:
        """Pass every secret column through ``reseal`` in one transaction; rows changed.

        A ``reseal`` that raises (a row no key decrypts) leaves every row as it was.
        """
        changed = 0
        with self.writer.begin() as db:
            for row in db.execute(select(_CONN)).all():
                values = {}
                for column, flag in (("password", "is_encrypted"),
                                     ("extra", "is_extra_encrypted")):
                    value = getattr(row, column)
                    if value is not None:
                        values[column] = reseal(value, getattr(row, flag), "connection",
                                                row.conn_id)
                        values[flag] = True
                if values:
                    db.execute(update(_CONN).where(_CONN.c.conn_id == row.conn_id)
                               .values(**values))
                    changed += 1
            for row in db.execute(select(_VAR)).all():
                db.execute(update(_VAR).where(_VAR.c.key == row.key).values(
                    val=reseal(row.val, row.is_encrypted, "variable", row.key),
                    is_encrypted=True))
                changed += 1
        return changed


@contextmanager
def open_secret_rows(url: str) -> Iterator[SecretRows | None]:
    """The secret rows of the database at ``url``; None when it has none yet (a SQLite
    file not created, or a schema without the tables). Never creates anything."""
    if _is_missing_sqlite_file(url):
        yield None
        return
    engine = database.make_engine(url)
    try:
        try:
            present = inspect(engine).has_table(_CONN.name)
        except OperationalError as exc:
            raise StoreError(f"cannot reach the metadata database "
                             f"{engine.url.render_as_string(hide_password=True)!r}: "
                             f"{exc.orig}") from None
        yield SecretRows(engine) if present else None
    finally:
        engine.dispose()


def _is_missing_sqlite_file(url: str) -> bool:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return False
    path = parsed.database
    return path is not None and path not in ("", ":memory:") and not Path(path).exists()
