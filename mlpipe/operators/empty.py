"""``EmptyOperator``: a task that does nothing (for joins and markers)."""

from __future__ import annotations

from typing import Any

from mlpipe.core.operator import BaseOperator, Context


class EmptyOperator(BaseOperator):
    """Does nothing; useful to group dependencies or mark a point in the DAG."""

    ui_color = "#e8f7e4"

    def execute(self, context: Context) -> Any:
        return None
