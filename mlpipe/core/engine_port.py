"""The one plugin point between the core and the engine above it: what ``DAG.test()`` runs.

The core sits below the engine and never imports it. The engine's ``dag.test()`` runner
is installed here when the ``mlpipe`` package is imported (``mlpipe/__init__.py`` installs
a function that imports ``mlpipe.scheduler.dag_test`` on first use), so ``import mlpipe``
stays cheap and the import graph keeps pointing down. Tests or embedders may install
another runner with ``install_dag_tester``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from mlpipe.core.states import DagRunState
from mlpipe.errors import DagDefinitionError

if TYPE_CHECKING:
    from mlpipe.core.dag import DAG

__all__ = ["DagTester", "TestedRun", "dag_tester", "install_dag_tester"]


class TestedRun(Protocol):
    """The finished run ``DAG.test()`` returns (``mlpipe.runtime.models.DagRun``)."""

    dag_id: str
    run_id: str
    logical_date: datetime
    conf: dict[str, Any]
    state: DagRunState

    @property
    def task_instances(self) -> Sequence[Any]: ...

    def get_task_instance(self, task_id: str, map_index: int = -1) -> Any: ...


class DagTester(Protocol):
    def __call__(self, dag: DAG, *, logical_date: datetime | str | None,
                 conf: Mapping[str, Any] | None, skip_retry_delays: bool) -> TestedRun: ...


_tester: DagTester | None = None


def install_dag_tester(tester: DagTester) -> None:
    """Make ``tester`` what ``DAG.test()`` calls."""
    global _tester
    _tester = tester


def dag_tester() -> DagTester:
    """The installed runner; an error if none is (the core was loaded without mlpipe)."""
    if _tester is None:
        raise DagDefinitionError("DAG.test() has no engine to run on; import mlpipe first "
                                 "(it installs one)")
    return _tester
