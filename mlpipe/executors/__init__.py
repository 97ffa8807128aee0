"""Executors: where task instances run (this process, child processes, Celery workers).

May import: mlpipe.runtime, mlpipe.store, mlpipe.tracking, mlpipe.core, mlpipe.errors.
"""

from __future__ import annotations

from typing import Any

from mlpipe.errors import SettingsError
from mlpipe.executors.base import ExecutionEnv, Executor, TaskEvent, Workload

#: every executor's name (each class is imported when asked for: a ``dag.test()`` runs on
#: the sequential one and need not import multiprocessing or Celery's wiring)
NAMES = ("celery", "local", "sequential")


def executor_class(name: str) -> type[Executor]:
    """The executor class called ``name``; an unknown name lists the known ones."""
    if name == "sequential":
        from mlpipe.executors.sequential import SequentialExecutor

        return SequentialExecutor
    if name == "local":
        from mlpipe.executors.local import LocalExecutor

        return LocalExecutor
    if name == "celery":
        from mlpipe.executors.celery import CeleryExecutor

        return CeleryExecutor
    raise SettingsError(f"unknown executor {name!r}; valid: {sorted(NAMES)}")


def __getattr__(name: str) -> Any:
    """``EXECUTORS`` and the executor classes, imported on first use (PEP 562)."""
    if name == "EXECUTORS":
        return {n: executor_class(n) for n in NAMES}
    classes = {"CeleryExecutor": "celery", "LocalExecutor": "local",
               "SequentialExecutor": "sequential"}
    if name in classes:
        return executor_class(classes[name])
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def make_executor(name: str, parallelism: int = 1, *, settings: Any = None) -> Executor:
    """The executor called ``name`` (configured by ``settings`` if given); an unknown name
    lists the known ones."""
    cls = executor_class(name)
    if settings is not None:
        return cls.from_settings(settings, parallelism)
    return cls(parallelism=parallelism)


__all__ = ["EXECUTORS", "CeleryExecutor", "ExecutionEnv", "Executor", "LocalExecutor",
           "SequentialExecutor", "TaskEvent", "Workload", "make_executor"]
