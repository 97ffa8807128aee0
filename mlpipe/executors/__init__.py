"""Executors: where task instances run (this process, child processes, Celery workers).

May import: mlpipe.runtime, mlpipe.store, mlpipe.tracking, mlpipe.core, mlpipe.errors.
"""

from __future__ import annotations

from typing import Any

from mlpipe.errors import SettingsError
from mlpipe.executors.base import ExecutionEnv, Executor, TaskEvent, Workload
from mlpipe.executors.celery import CeleryExecutor
from mlpipe.executors.local import LocalExecutor
from mlpipe.executors.sequential import SequentialExecutor

EXECUTORS: dict[str, type[Executor]] = {
    "celery": CeleryExecutor,
    "local": LocalExecutor,
    "sequential": SequentialExecutor,
}


def make_executor(name: str, parallelism: int = 1, *, settings: Any = None) -> Executor:
    """The executor called ``name`` (configured by ``settings`` if given); an unknown name
    lists the known ones."""
    try:
        cls = EXECUTORS[name]
    except KeyError:
        raise SettingsError(f"unknown executor {name!r}; valid: {sorted(EXECUTORS)}") from None
    if settings is not None:
        return cls.from_settings(settings, parallelism)
    return cls(parallelism=parallelism)


__all__ = ["EXECUTORS", "CeleryExecutor", "ExecutionEnv", "Executor", "LocalExecutor",
           "SequentialExecutor", "TaskEvent", "Workload", "make_executor"]
