"""Which hook speaks to a connection of a given type (for ``mlpipe connections test``)."""

from __future__ import annotations

from mlpipe.connections.connection import Connection
from mlpipe.errors import HookError
from mlpipe.hooks.base import BaseHook
from mlpipe.hooks.s3 import S3Hook
from mlpipe.hooks.sql import DRIVERS, PostgresHook, SqlHook

HOOKS_BY_TYPE: dict[str, type[BaseHook]] = {
    "aws": S3Hook, "s3": S3Hook,
    "postgres": PostgresHook, "postgresql": PostgresHook,
    "sqlite": SqlHook,
}


def hook_for(conn: Connection) -> BaseHook:
    """A hook bound to ``conn``; a ``driver+dialect`` type is a SQLAlchemy database."""
    hook_class = HOOKS_BY_TYPE.get(conn.conn_type)
    if hook_class is None and "+" in conn.conn_type:
        hook_class = SqlHook
    if hook_class is None:
        known = sorted({*HOOKS_BY_TYPE, *DRIVERS, "DIALECT+DRIVER"})
        raise HookError(conn.conn_id, conn.endpoint(),
                        f"no hook for connection type {conn.conn_type!r}; known: {known}")
    return hook_class(None, connection=conn)
