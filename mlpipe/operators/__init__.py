"""Operators. Light ones import at once; ML operators load on first use (no torch here)."""

from __future__ import annotations

from mlpipe.operators.bash import BashOperator
from mlpipe.operators.empty import EmptyOperator
from mlpipe.operators.python import BranchPythonOperator, PythonOperator, ShortCircuitOperator
from mlpipe.operators.sql import SQLExecuteQueryOperator

__all__ = [
    "BashOperator",
    "BranchPythonOperator",
    "EmptyOperator",
    "PythonOperator",
    "SQLExecuteQueryOperator",
    "ShortCircuitOperator",
]
