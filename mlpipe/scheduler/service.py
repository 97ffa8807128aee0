"""The configured engine: settings in, store, executor and DAG runs out.

The command line and tests build one ``Engine`` from ``Settings`` and call it; nothing
here reads the environment itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from mlpipe.connections.keyfile import ensure_private_dir
from mlpipe.core.dag import DAG
from mlpipe.executors import make_executor
from mlpipe.executors.base import ExecutionEnv, Executor
from mlpipe.runtime.dagbag import DagBag, load_dagbag, load_one
from mlpipe.runtime.models import DagRun
from mlpipe.runtime.try_runner import TryRunner
from mlpipe.scheduler.dagrun_driver import DagRunDriver, ProgressFn
from mlpipe.scheduler.leases import RunLease
from mlpipe.scheduler.runs import create_dag_run
from mlpipe.settings import Settings
from mlpipe.store.entities import DagRunRecord, TIKey
from mlpipe.store.metadata_store import MetadataStore


@dataclass
class Engine:
    """Everything a command needs: settings, the metadata store and the DAGs folder."""

    settings: Settings
    store: MetadataStore
    _bag: DagBag | None = field(default=None, repr=False)
    #: DAG objects handed to ``run`` directly, or loaded alone from their file, by id
    _given: dict[str, DAG] = field(default_factory=dict, repr=False)

    @classmethod
    def from_settings(cls, settings: Settings, *, migrate: bool = True) -> Engine:
        ensure_private_dir(settings.home)
        return cls(settings, MetadataStore.open(settings.database, migrate=migrate))

    @property
    def logs_root(self) -> Path:
        return self.settings.home.resolve() / "logs"

    # -- DAGs ------------------------------------------------------------------------------

    def dagbag(self, folder: Path | None = None) -> DagBag:
        """Parse the DAGs folder (once), each file tried in a child first; writes nothing.

        Only the scheduler records DAGs and import errors in the store: reading commands
        never write to the database.
        """
        if self._bag is None or (folder is not None and folder != self._bag.folder):
            self._bag = load_dagbag(folder or self.settings.dags_folder,
                                    parse_timeout=self.settings.dag_parse_timeout_s)
        return self._bag

    def get_dag(self, dag_id: str) -> DAG:
        """The DAG ``dag_id``: from its own file when the store knows it (a scheduler recorded
        it), else from the parsed folder (which names the known ids if it is not there)."""
        if dag_id in self._given:
            return self._given[dag_id]
        if self._bag is None:
            known = self.store.get_dag(dag_id)
            if known is not None and known.fileloc:
                dag = load_one(self.settings.dags_folder, Path(known.fileloc), dag_id,
                               parse_timeout=self.settings.dag_parse_timeout_s)
                if dag is not None:
                    self._given[dag_id] = dag
                    return dag
        return self.dagbag().get_dag(dag_id)

    def dag_provider(self, dag_id: str) -> DAG:
        given = self._given.get(dag_id)
        return given if given is not None else self.get_dag(dag_id)

    # -- runs ----------------------------------------------------------------------------------

    def make_executor(self, name: str | None = None) -> Executor:
        executor = make_executor(name or self.settings.executor, self.settings.parallelism,
                                 settings=self.settings)
        executor.start(ExecutionEnv(self.try_runner()))
        return executor

    def try_runner(self) -> TryRunner:
        """The runner for tries of this engine's DAGs (what executors and ``tasks run`` use)."""
        return TryRunner.from_settings(self.settings, self.store, self.dag_provider,
                                       logs_root=self.logs_root)

    def trigger(self, dag: DAG, *, conf: Mapping[str, Any] | None = None,
                run_id: str | None = None, logical_date: datetime | str | None = None
                ) -> DagRunRecord:
        """Create a manual run (queued); ``run`` executes it."""
        return create_dag_run(self.store, dag, logical_date=logical_date, conf=conf,
                              run_id=run_id)

    def run(self, dag: DAG, run_id: str, *, executor: Executor | None = None,
            on_progress: ProgressFn | None = None) -> DagRun:
        """Drive the run to its end with the configured (or given) executor."""
        self._given[dag.dag_id] = dag
        own = executor is None
        executor = executor or self.make_executor()
        # Leased for one MLPIPE_TASK_LEASE_S, renewed while we live: if this process dies,
        # a scheduler takes the run over within one lease (``scheduler/leases.py``).
        try:
            with RunLease(self.store, [(dag.dag_id, run_id)], lease=self.lease):
                driver = DagRunDriver(self.store, dag, run_id, executor,
                                      heartbeat_timeout=self.settings.task_lease_s,
                                      xcom_max_bytes=self.settings.xcom_max_bytes,
                                      on_progress=on_progress)
                return driver.execute()
        finally:
            if own:
                executor.shutdown()

    @property
    def lease(self) -> timedelta:
        """How long a run or task instance stays held without a renewal or heartbeat."""
        return timedelta(seconds=self.settings.task_lease_s)

    def clear(self, dag: DAG, *, run_id: str | None = None, task_regex: str | None = None,
              downstream: bool = True, only_failed: bool = False,
              stop_running: bool = False) -> list[TIKey]:
        """Reset matching task instances (and their downstream) so they run again.

        Like Airflow's clear: each cleared instance gets ``retries`` more tries, and its run
        goes back to queued. Running instances are only reset with ``stop_running`` (their
        try then stops itself at its next heartbeat). See ``run_control``.
        """
        from mlpipe.scheduler import run_control

        return run_control.clear(self.store, dag, run_id=run_id, task_regex=task_regex,
                                 downstream=downstream, only_failed=only_failed,
                                 stop_running=stop_running)


def now_utc() -> datetime:
    return datetime.now(UTC)
