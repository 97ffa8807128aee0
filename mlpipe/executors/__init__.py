"""Executors: where task instances run (this process, or child processes).

May import: mlpipe.runtime, mlpipe.store, mlpipe.tracking, mlpipe.core, mlpipe.errors.
"""

from __future__ import annotations

from mlpipe.errors import SettingsError
from mlpipe.executors.base import ExecutionEnv, Executor, TaskEvent, Workload
from mlpipe.executors.local import LocalExecutor
from mlpipe.executors.sequential import SequentialExecutor

EXECUTORS: dict[str, type[Executor]] = {
    "local": LocalExecutor,
    "sequential": SequentialExecutor,
}


def make_executor(name: str, parallelism: int = 1) -> Executor:
    """The executor called ``name``; an unknown name lists the known ones."""
    try:
        cls = EXECUTORS[name]
    except KeyError:
        raise SettingsError(f"unknown executor {name!r}; valid: {sorted(EXECUTORS)}") from None
    return cls(parallelism=parallelism)


__all__ = ["EXECUTORS", "ExecutionEnv", "Executor", "LocalExecutor", "SequentialExecutor",
           "TaskEvent", "Workload", "make_executor"]
