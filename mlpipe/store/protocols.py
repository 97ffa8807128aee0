"""The store as the scheduler and the runtime see it: protocols, not the SQL behind them.

``MetadataStore`` is the one implementation (``tests/store/test_protocols.py`` checks that
its methods keep these signatures). A transaction handle (``conn``) is opaque here: the
caller gets it from ``transaction``/``try_transaction`` and passes it back unchanged.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from contextlib import AbstractContextManager
from datetime import datetime, timedelta
from typing import Any, Protocol

from mlpipe.store.entities import DagRecord, DagRunRecord, TaskInstanceRecord, TIKey

__all__ = ["DriverStore", "SchedulerStore", "TryStore"]


class TryStore(Protocol):
    """What one try reads and writes (``runtime``, ``tracking``): its run, its claim and
    result, XComs, artifacts and the MLflow link."""

    def get_run(self, dag_id: str, run_id: str) -> DagRunRecord:
        ...

    def get_ti(self, key: TIKey) -> TaskInstanceRecord | None:
        ...

    def list_tis(self, dag_id: str, run_id: str, *, task_ids: Iterable[str] | None = None,
                 states: Iterable[str] | None = None) -> list[TaskInstanceRecord]:
        ...

    def claim(self, key: TIKey, *, pid: int | None = None, hostname: str = "",
              log_path: str | None = None, start_date: datetime | None = None,
              conn: Any = None) -> tuple[int, int, str] | None:
        ...

    def finish_try(self, key: TIKey, *, to_state: str, xcoms: dict[str, str],
                   conn: Any = None, **values: Any) -> bool:
        ...

    def heartbeat(self, key: TIKey, pid: int) -> bool:
        ...

    def try_pokes(self, key: TIKey, try_number: int) -> tuple[datetime | None, int]:
        ...

    def external_states(self, dag_id: str, logical_date: datetime,
                        task_id: str | None = None) -> list[str] | None:
        ...

    def record_dataset_events(self, uris: Mapping[str, Mapping[str, Any]], *,
                              source: tuple[str, str, str, int] | None = None,
                              extra: Mapping[str, Any] | None = None) -> None:
        ...

    def push_xcoms(self, key: TIKey, values: dict[str, str],
                   conn: Any = None) -> None:
        ...

    def get_xcoms(self, dag_id: str, run_id: str, task_id: str, key: str,
                  map_indexes: Iterable[int] | None = None) -> dict[int, str]:
        ...

    def record_artifacts(self, key: TIKey, try_number: int, outputs: list[dict[str, Any]],
                         inputs: list[dict[str, Any]], *, cache_key: str | None = None,
                         config_hash: str | None = None, git_commit: str | None = None
                         ) -> list[int]:
        ...

    def artifacts_with_cache_key(self, cache_key: str) -> list[dict[str, Any]]:
        ...

    def artifact_by_uri(self, uri: str) -> dict[str, Any] | None:
        ...

    def artifact_inputs(self, artifact_id: int) -> list[dict[str, Any]]:
        ...

    def get_mlflow_run_id(self, dag_id: str, run_id: str) -> str | None:
        ...

    def set_mlflow_run_id(self, dag_id: str, run_id: str, mlflow_run_id: str) -> str:
        ...

class DriverStore(TryStore, Protocol):
    """What driving one run needs (``scheduler.dagrun_driver``): transactions it owns,
    compare-and-set transitions, queueing through pools, and the run's end."""

    #: whether many queueings may share one transaction (SQLite: yes)
    batches_writes: bool

    def transaction(self) -> Any:
        ...

    def try_transaction(self, key: TIKey) -> AbstractContextManager[Any]:
        ...

    def transition(self, key: TIKey, from_states: Iterable[str], to_state: str,
                   conn: Any = None, **values: Any) -> bool:
        ...

    def queue(self, key: TIKey, from_states: Iterable[str], *, pool: str | None = None,
              dag_limit: int | None = None, conn: Any = None) -> str:
        ...

    def set_tis_state(self, keys: Iterable[TIKey], to_state: str, *,
                      unless: Iterable[str] = (), conn: Any = None) -> int:
        ...

    def ti_states(self, dag_id: str, run_id: str) -> list[tuple[str, int, str]]:
        ...

    def add_tis(self, dag_id: str, run_id: str,
                task_instances: Iterable[tuple[Any, ...]],
                *, drop: Iterable[tuple[str, int]] = ()) -> None:
        ...

    def set_run_state(self, dag_id: str, run_id: str, state: str, **values: Any) -> None:
        ...

    def end_run(self, dag_id: str, run_id: str, state: str, end_date: datetime) -> None:
        ...

    def stale_running(self, timeout: timedelta, *, now: datetime | None = None
                      ) -> list[TaskInstanceRecord]:
        ...

    def previous_ti_states(self, dag_id: str, logical_date: datetime,
                           task_id: str) -> list[str] | None:
        ...

    def record_sla_miss(self, dag_id: str, run_id: str, task_id: str | None, *, kind: str,
                        deadline_at: datetime, recorded_at: datetime) -> bool:
        ...

class SchedulerStore(DriverStore, Protocol):
    """What the scheduler loop needs besides driving runs: leases, admission, due runs."""

    def claim_runs(self, scheduler_id: str, lease: timedelta, *, dag_ids: Iterable[str],
                   limit: int = 50) -> list[DagRunRecord]:
        ...

    def renew_leases(self, scheduler_id: str, lease: timedelta) -> set[tuple[str, str]]:
        ...

    def release_runs(self, scheduler_id: str, run_ids: Iterable[tuple[str, str]] | None = None
                     ) -> None:
        ...

    def lease_run(self, holder: str, dag_id: str, run_id: str, lease: timedelta) -> bool:
        ...

    def release_dead_schedulers(self, alive: str) -> int:
        ...

    def start_run_if_room(self, dag_id: str, run_id: str, max_active_runs: int) -> bool:
        ...

    def active_run_count(self, dag_id: str) -> int:
        ...

    def automated_run_at(self, dag_id: str, logical_date: datetime) -> DagRunRecord | None:
        ...

    def latest_scheduled_run(self, dag_id: str) -> DagRunRecord | None:
        ...

    def list_dags(self) -> list[DagRecord]:
        ...

    def paused_dag_ids(self) -> set[str]:
        ...

    def replace_import_errors(self, errors: dict[str, str]) -> None:
        ...

    def record_listing(self, stamps: dict[str, tuple[int, int]],
                       entries: list[dict[str, Any]]) -> None:
        ...
