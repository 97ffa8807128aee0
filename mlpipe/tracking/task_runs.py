"""The MLflow runs of one task try: its child run, and its DAG run's parent on first need."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from mlpipe.core.states import TaskInstanceState as S
from mlpipe.errors import MlpipeError
from mlpipe.tracking.config import TrackingConfig
from mlpipe.tracking.mlflow_runs import LazyMlflowRun
from mlpipe.tracking.provenance import config_hash, dag_folder_commit

if TYPE_CHECKING:
    from mlflow import MlflowClient

    from mlpipe.runtime.models import DagRun, TaskInstance
    from mlpipe.store.protocols import TryStore

log = logging.getLogger("mlpipe.tracking")


def run_tags(run: DagRun) -> dict[str, str]:
    """Tags of a DAG run's parent MLflow run."""
    tags = {
        "mlpipe.dag_id": run.dag_id,
        "mlpipe.run_id": run.run_id,
        "mlpipe.logical_date": run.logical_date.isoformat(),
        "mlpipe.run_type": run.run_type,
        "mlpipe.config_hash": config_hash({"conf": run.conf, "params": run.params}),
    }
    commit = dag_folder_commit(run.dag.fileloc)
    if commit:
        tags["mlpipe.git_commit"] = commit
    return tags


class TaskMlflowRun:
    """Creates the try's child run when the task first uses ``context["mlflow_run"]``."""

    def __init__(self, store: TryStore, run: DagRun, ti: TaskInstance,
                 config: TrackingConfig | None) -> None:
        self.store = store
        self.run = run
        self.ti = ti
        self.config = config
        self.lazy = LazyMlflowRun(self._start)
        self._client: MlflowClient | None = None
        self._child: str | None = None

    def _start(self) -> tuple[MlflowClient, str]:
        from mlpipe.tracking.mlflow_runs import client_for, experiment_id, start_run

        if self.config is None:
            raise MlpipeError("this task asked for an MLflow run but no tracking store is "
                              "configured; set MLFLOW_TRACKING_URI or MLPIPE_HOME")
        client = client_for(self.config)
        experiment = experiment_id(client, self.config, self.run.dag_id)
        parent = self.store.get_mlflow_run_id(self.run.dag_id, self.run.run_id)
        if parent is None:
            mine = start_run(client, experiment, name=self.run.run_id, tags=run_tags(self.run))
            parent = self.store.set_mlflow_run_id(self.run.dag_id, self.run.run_id, mine)
            if parent != mine:  # another task created the parent first: keep theirs
                client.delete_run(mine)
        ti = self.ti
        index = f"[{ti.map_index}]" if ti.map_index >= 0 else ""
        tags = {**run_tags(self.run), "mlpipe.task_id": ti.task_id,
                "mlpipe.map_index": str(ti.map_index), "mlpipe.try_number": str(ti.try_number)}
        self._child = start_run(client, experiment, name=f"{ti.task_id}{index} try "
                                                         f"{ti.try_number}",
                                tags=tags, parent=parent)
        self._client = client
        log.info("MLflow run %s (parent %s) in experiment %r", self._child, parent,
                 self.run.dag_id)
        if ti.try_number > 1:  # an earlier try that was killed never ended its own run
            end_lost_children(client, experiment, parent, status="FAILED",
                              task=(ti.task_id, ti.map_index), before_try=ti.try_number)
        return client, self._child

    def finish(self, state: S) -> None:
        """End the child run with the try's outcome (nothing if the task never used it)."""
        if self._client is None or self._child is None:
            return
        status = "FINISHED" if state in (S.SUCCESS, S.SKIPPED) else "FAILED"
        try:
            self.lazy.flush()
            self._client.set_terminated(self._child, status=status)
        except Exception:  # tracking trouble must not change the task's outcome
            log.exception("could not end MLflow run %s", self._child)


def end_parent_run(store: TryStore, dag_id: str, run_id: str,
                   config: TrackingConfig | None, state: str) -> None:
    """Finish the DAG run's parent MLflow run (if a task created one) with its final state."""
    if config is None:
        return
    parent = store.get_mlflow_run_id(dag_id, run_id)
    if parent is None:
        return
    from mlpipe.tracking.mlflow_runs import client_for

    try:
        client = client_for(config)
        experiment = client.get_run(parent).info.experiment_id
        # Children still running belong to tries whose process died (SIGKILL, OOM).
        end_lost_children(client, experiment, parent, status="FAILED")
        client.set_terminated(parent, status="FINISHED" if state == "success" else "FAILED")
    except Exception:
        log.exception("could not end MLflow parent run %s", parent)


def end_lost_children(client: MlflowClient, experiment: str, parent: str, *, status: str,
                      task: tuple[str, int] | None = None, before_try: int | None = None
                      ) -> list[str]:
    """End the still-RUNNING child runs of ``parent`` (optionally of one task's earlier
    tries) with ``status``; returns their ids. A try whose process was killed leaves its run
    RUNNING: nothing else would ever end it."""
    query = f"tags.mlflow.parentRunId = '{parent}' and attributes.status = 'RUNNING'"
    if task is not None:
        query += (f" and tags.`mlpipe.task_id` = '{task[0]}'"
                  f" and tags.`mlpipe.map_index` = '{task[1]}'")
    ended = []
    for child in client.search_runs([experiment], filter_string=query, max_results=1000):
        try_number = int(child.data.tags.get("mlpipe.try_number", "0"))
        if before_try is not None and try_number >= before_try:
            continue
        client.set_terminated(child.info.run_id, status=status)
        ended.append(child.info.run_id)
        log.info("ended MLflow run %s of a lost try (%s)", child.info.run_id, status)
    return ended


__all__ = ["TaskMlflowRun", "end_lost_children", "end_parent_run", "run_tags"]

