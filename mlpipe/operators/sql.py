"""``SQLExecuteQueryOperator``: run SQL through a connection, return the last statement's rows."""

from __future__ import annotations

import base64
import logging
import uuid
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from mlpipe.core.operator import BaseOperator, Context
from mlpipe.hooks.sql import SqlHook

log = logging.getLogger("mlpipe.task")


class SQLExecuteQueryOperator(BaseOperator):
    """Runs ``sql`` (a string of one or more statements, a list of them, or a ``.sql`` file
    rendered as a template) on the connection ``conn_id`` in one transaction.

    Returns the rows of the last statement as a list of lists (JSON-able: decimals become
    numbers, UUIDs strings, bytes base64), or None if it returns no rows. ``parameters``
    (a mapping for ``:name`` placeholders, or a sequence in the driver's style) go to every
    statement.
    """

    template_fields = ("sql", "parameters")
    template_ext = (".sql",)
    ui_color = "#cdaaed"

    def __init__(self, task_id: str, *, conn_id: str, sql: str | Sequence[str],
                 parameters: Mapping[str, Any] | Sequence[Any] | None = None,
                 **kwargs: Any) -> None:
        super().__init__(task_id, **kwargs)
        self.conn_id = conn_id
        self.sql = sql
        self.parameters = parameters

    def execute(self, context: Context) -> Any:
        hook = SqlHook(self.conn_id)
        log.info("Running SQL on %s: %s", hook.endpoint(), self.sql)
        rows = hook.run(self.sql, self.parameters)
        if rows is None:
            log.info("The last statement returned no rows")
            return None
        log.info("The last statement returned %d row(s)", len(rows))
        return [[_jsonable(v) for v in row] for row in rows]


def _jsonable(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode()
    return value
