"""Store records in the JSON shapes of Airflow 2.10's stable REST API."""

from __future__ import annotations

import threading
import weakref
from datetime import datetime, timedelta
from typing import Any

from mlpipe.core.dag import DAG
from mlpipe.scheduler.runs import next_logical_dates
from mlpipe.store.entities import DagRecord, DagRunRecord, TaskInstanceRecord
from mlpipe.web.api.common import iso, state_of


def schedule_interval(dag: DAG | None) -> dict[str, Any] | None:
    """Airflow's ``ScheduleInterval``: a cron expression, a time delta, or null."""
    if dag is None or dag.schedule is None:
        return None
    schedule = dag.schedule
    if isinstance(schedule, timedelta):
        return {"__type": "TimeDelta", "days": schedule.days, "seconds": schedule.seconds,
                "microseconds": schedule.microseconds}
    if isinstance(schedule, str):
        return {"__type": "CronExpression", "value": schedule}
    if hasattr(dag.timetable, "uris"):  # a dataset schedule: Airflow writes "Dataset"
        return {"__type": "CronExpression", "value": "Dataset"}
    return {"__type": "CronExpression", "value": str(schedule)}


#: the next run of each parsed DAG after its newest automated run: a cron timetable costs
#: milliseconds to evaluate, and both only change when a run is made or the file re-parsed
_NEXT_RUNS: weakref.WeakKeyDictionary[DAG, tuple[datetime | None, list[Any]]] = \
    weakref.WeakKeyDictionary()
_NEXT_LOCK = threading.Lock()


def next_run(dag: DAG, latest_scheduled: datetime | None) -> list[Any]:
    """``next_logical_dates(dag, latest_scheduled)``, remembered per DAG object."""
    with _NEXT_LOCK:
        cached = _NEXT_RUNS.get(dag)
    if cached is not None and cached[0] == latest_scheduled:
        return cached[1]
    upcoming = next_logical_dates(dag, latest_scheduled)
    with _NEXT_LOCK:
        _NEXT_RUNS[dag] = (latest_scheduled, upcoming)
    return upcoming


def dag_shape(dag_id: str, record: DagRecord | None, dag: DAG | None, *,
              has_import_errors: bool = False,
              latest_scheduled: datetime | None = None) -> dict[str, Any]:
    """A ``DAG`` object; ``dag`` (parsed) may be None when its file is gone or not parsed."""
    upcoming = next_run(dag, latest_scheduled) if dag is not None else []
    tasks = list(dag.task_dict.values()) if dag is not None else []
    return {
        "dag_id": dag_id,
        "dag_display_name": dag_id,
        "root_dag_id": None,
        "is_paused": bool(record.is_paused) if record is not None else False,
        "is_active": dag is not None,
        "is_subdag": False,
        "last_parsed_time": iso(record.last_parsed_at) if record is not None else None,
        "last_pickled": None,
        "last_expired": None,
        "scheduler_lock": None,
        "pickle_id": None,
        "default_view": "grid",
        "fileloc": (record.fileloc if record is not None and record.fileloc
                    else (dag.fileloc if dag is not None else "")),
        "file_token": "",
        "owners": sorted({str(getattr(t, "owner", "")) for t in tasks} - {""}),
        "description": dag.description if dag is not None else None,
        "schedule_interval": schedule_interval(dag),
        "timetable_description": dag.timetable.description if dag is not None else None,
        "tags": [{"name": t} for t in (dag.tags if dag is not None else [])],
        "max_active_tasks": dag.max_active_tasks if dag is not None else None,
        "max_active_runs": dag.max_active_runs if dag is not None else None,
        "has_task_concurrency_limits": False,
        "has_import_errors": has_import_errors,
        "next_dagrun": iso(upcoming[0].start) if upcoming else None,
        "next_dagrun_data_interval_start": iso(upcoming[0].start) if upcoming else None,
        "next_dagrun_data_interval_end": iso(upcoming[0].end) if upcoming else None,
        "next_dagrun_create_after": iso(upcoming[0].end) if upcoming else None,
    }


def run_shape(run: DagRunRecord) -> dict[str, Any]:
    """A ``DAGRun`` object."""
    return {
        "dag_run_id": run.run_id,
        "dag_id": run.dag_id,
        "logical_date": iso(run.logical_date),
        "execution_date": iso(run.logical_date),
        "start_date": iso(run.start_date),
        "end_date": iso(run.end_date),
        "data_interval_start": iso(run.data_interval_start),
        "data_interval_end": iso(run.data_interval_end),
        "last_scheduling_decision": None,
        "run_type": run.run_type,
        "state": run.state,
        "external_trigger": run.run_type == "manual",
        "conf": run.conf,
        "note": None,
    }


def ti_shape(ti: TaskInstanceRecord, run: DagRunRecord, dag: DAG | None) -> dict[str, Any]:
    """A ``TaskInstance`` object (pool and priority from the parsed task, if any)."""
    task = dag.task_dict.get(ti.task_id) if dag is not None else None
    return {
        "task_id": ti.task_id,
        "task_display_name": ti.task_id,
        "dag_id": ti.dag_id,
        "dag_run_id": ti.run_id,
        "execution_date": iso(run.logical_date),
        "start_date": iso(ti.start_date),
        "end_date": iso(ti.end_date),
        "duration": ti.duration,
        "state": state_of(ti.state),
        "try_number": ti.try_number,
        "map_index": ti.map_index,
        "max_tries": ti.max_tries,
        "hostname": ti.hostname or "",
        "unixname": "",
        "pool": (getattr(task, "pool", None) or "default_pool"),
        "pool_slots": 1,
        "queue": "default",
        "priority_weight": getattr(task, "priority_weight", 1),
        "operator": ti.operator,
        "queued_when": iso(ti.queued_at),
        "pid": ti.pid,
        "executor": None,
        "executor_config": "{}",
        "sla_miss": None,
        "rendered_map_index": str(ti.map_index) if ti.map_index >= 0 else None,
        "rendered_fields": {},
        "trigger": None,
        "triggerer_job": None,
        "note": None,
    }


def ti_reference(ti: TaskInstanceRecord | Any, run: DagRunRecord) -> dict[str, Any]:
    """A ``TaskInstanceReference`` (what clear and set-state answer with)."""
    return {"task_id": ti.task_id, "dag_id": ti.dag_id, "dag_run_id": ti.run_id,
            "execution_date": iso(run.logical_date)}
