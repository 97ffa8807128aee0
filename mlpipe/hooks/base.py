"""``BaseHook``: a client of one external system, configured by a connection."""

from __future__ import annotations

from mlpipe.connections.backends import get_connection
from mlpipe.connections.connection import Connection
from mlpipe.errors import ConnectionsError


class BaseHook:
    """Looks up its connection once, on first use (never at construction)."""

    def __init__(self, conn_id: str | None, *, connection: Connection | None = None) -> None:
        self.conn_id = conn_id if connection is None else connection.conn_id
        self._connection = connection

    @property
    def connection(self) -> Connection:
        """The hook's connection (from the environment or the metadata DB)."""
        if self._connection is None:
            if self.conn_id is None:
                raise ConnectionsError(f"{type(self).__name__} was given no connection id; "
                                       "pass one, e.g. conn_id='my_db'")
            self._connection = get_connection(self.conn_id)
        return self._connection

    @staticmethod
    def get_connection(conn_id: str) -> Connection:
        """The connection ``conn_id``, as Airflow's ``BaseHook.get_connection``."""
        return get_connection(conn_id)

    def endpoint(self) -> str:
        """Where the hook connects, for messages (secrets masked)."""
        return self.connection.endpoint()

    def test_connection(self) -> str:
        """Connect for real; returns what was checked, raises ``ConnectionFailedError``."""
        raise NotImplementedError
