"""``mlpipe tasks ...``: run, test, inspect, read logs of and clear task instances."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from mlpipe.cli.common import DagsFolder, Output, fmt_time, open_engine
from mlpipe.cli.output import OutputFormat, console, guarded, print_rows
from mlpipe.core.states import TaskInstanceState as S
from mlpipe.errors import DagDefinitionError, StoreError, TaskNotFoundError
from mlpipe.runtime.models import TaskInstance
from mlpipe.scheduler import run_control
from mlpipe.store.entities import TaskInstanceRecord, TIKey
from mlpipe.store.metadata_store import MetadataStore

app = typer.Typer(help="Run and inspect task instances.", no_args_is_help=True)

MapIndex = Annotated[int, typer.Option("--map-index", "-m", help="Mapped instance")]


@app.command("run")
@guarded
def run(dag_id: str, task_id: str, run_id: str, map_index: MapIndex = -1,
        dags_folder: DagsFolder = None) -> None:
    """Run one try of one task instance of an existing run (what executors call)."""
    engine = open_engine(dags_folder)
    dag = engine.get_dag(dag_id)
    dag.get_task(task_id)
    key = TIKey(dag_id, run_id, task_id, map_index)
    record = engine.store.get_ti(key)
    if record is None:
        engine.store.get_run(dag_id, run_id)  # names the run if that is what is missing
        raise StoreError(f"run {run_id!r} has no task instance {task_id!r} map_index "
                         f"{map_index}")
    if record.state in (S.NONE, S.SCHEDULED, S.UP_FOR_RETRY, S.UP_FOR_RESCHEDULE):
        engine.store.transition(key, [record.state], S.QUEUED)
    outcome = engine.try_runner().run(key)  # the runner every executor uses
    if outcome is None:
        raise StoreError(f"{key} is {record.state}, not queued: it runs elsewhere or finished")
    console.print(f"{key}: {outcome.state.value}")
    if outcome.state not in (S.SUCCESS, S.SKIPPED):
        raise typer.Exit(1)


@app.command("test")
@guarded
def test(dag_id: str, task_id: str,
         logical_date: Annotated[str | None, typer.Argument(help="ISO date")] = None,
         dags_folder: DagsFolder = None) -> None:
    """Run one task alone (no dependencies, nothing saved) and print its log."""
    from mlpipe.scheduler.dag_test import test_task

    dag = open_engine(dags_folder).get_dag(dag_id)
    ti = test_task(dag, task_id, logical_date=logical_date)
    sys.stdout.write(ti.log)
    console.print(f"{task_id}: {ti.state.value}")
    if ti.state not in (S.SUCCESS, S.SKIPPED):
        raise typer.Exit(1)


@app.command("states")
@guarded
def states(dag_id: str, run_id: str, output: Output = OutputFormat.table,
           dags_folder: DagsFolder = None) -> None:
    """Every task instance of a run with its state and try number."""
    engine = open_engine(dags_folder)
    dag = engine.get_dag(dag_id)
    engine.store.get_run(dag_id, run_id)
    order = {t.task_id: i for i, t in enumerate(dag.topological_sort())}
    records = sorted(engine.store.list_tis(dag_id, run_id),
                     key=lambda r: (order.get(r.task_id, 0), r.map_index))
    rows = [{"dag_id": r.dag_id, "run_id": r.run_id, "task_id": r.task_id,
             "map_index": r.map_index, "state": r.state, "try_number": r.try_number,
             "start_date": fmt_time(r.start_date), "end_date": fmt_time(r.end_date),
             "duration": r.duration, "hostname": r.hostname, "pid": r.pid,
             "reschedule_date": fmt_time(r.reschedule_date)}
            for r in records]
    print_rows(rows, ["task_id", "map_index", "state", "try_number", "start_date", "end_date",
                      "duration", "hostname", "pid", "reschedule_date", "dag_id", "run_id"],
               output)


@app.command("logs")
@guarded
def logs(dag_id: str, task_id: str,
         run_id: Annotated[str | None, typer.Argument(help="Default: the latest run")] = None,
         try_number: Annotated[int | None, typer.Option("--try", "-t", help="Try number")] = None,
         follow: Annotated[bool, typer.Option(
             "--follow", "-f", help="Keep printing what the try writes until it ends")] = False,
         map_index: MapIndex = -1, dags_folder: DagsFolder = None) -> None:
    """Print the log of one try of a task instance (default: its latest try)."""
    engine = open_engine(dags_folder)
    dag = engine.get_dag(dag_id)
    dag.get_task(task_id)
    if run_id is None:
        latest = engine.store.latest_run(dag_id)
        if latest is None:
            raise StoreError(f"DAG {dag_id!r} has no runs yet")
        run_id = latest.run_id
    else:
        engine.store.get_run(dag_id, run_id)
    record = engine.store.get_ti(TIKey(dag_id, run_id, task_id, map_index))
    if record is None:
        raise TaskNotFoundError(dag_id, f"{task_id}[{map_index}]", [
            f"{r.task_id}[{r.map_index}]" for r in engine.store.list_tis(dag_id, run_id)
            if r.task_id == task_id])
    ti = TaskInstance.from_record(record, None)
    if ti.try_number == 0:
        raise StoreError(f"{ti.key} has not run yet (state {ti.state.value})")
    wanted = try_number or ti.try_number
    if not 1 <= wanted <= ti.try_number:
        raise StoreError(f"{ti.key} has tries 1..{ti.try_number}; there is no try {wanted}")
    path = ti.log_file(wanted)
    if path is None or not path.exists():
        _print_remote_log(engine.settings.remote_log_uri, ti.key, wanted, path)
        return
    console.print(f"[dim]*** {path}[/]", markup=True)
    if not follow:
        sys.stdout.write(path.read_text(errors="replace"))
        return
    _follow(engine.store, ti.key, wanted, path)


def _print_remote_log(root: str | None, key: TIKey, try_number: int,
                      path: Path | None) -> None:
    """The try ran elsewhere (or its worker's home is gone): print the remote copy."""
    from mlpipe.runtime.remote_logs import read_remote_log, remote_log_uri

    text = read_remote_log(root, key, try_number) if root else None
    if text is None:
        where = f" nor at {remote_log_uri(root, key, try_number)}" if root else \
            " (set MLPIPE_REMOTE_LOG_URI to read logs of tries that ran on other machines)"
        raise StoreError(f"the log of try {try_number} of {key} is missing ({path}){where}")
    console.print(f"[dim]*** {remote_log_uri(root or '', key, try_number)}[/]", markup=True)
    sys.stdout.write(text)


def _follow(store: MetadataStore, key: TIKey, try_number: int, path: Path) -> None:
    """``tail -f`` the try's log until the try is no longer running (then print the rest)."""
    with open(path, encoding="utf-8", errors="replace") as log:
        while True:
            chunk = log.read()
            if chunk:
                sys.stdout.write(chunk)
                sys.stdout.flush()
                continue
            record = store.get_ti(key)
            if record is None or record.try_number != try_number or \
                    record.state not in (S.RUNNING, S.QUEUED):
                sys.stdout.write(log.read())
                return
            time.sleep(0.2)


@app.command("clear")
@guarded
def clear(dag_id: str,
          task_regex: Annotated[str | None, typer.Option("--task", "-t",
                                                         help="Regex of task ids")] = None,
          run_id: Annotated[str | None, typer.Option("--run-id", "-r")] = None,
          only_failed: Annotated[bool, typer.Option("--only-failed")] = False,
          downstream: Annotated[bool, typer.Option("--downstream/--no-downstream")] = True,
          wait: Annotated[bool, typer.Option("--wait", help="Re-run the cleared runs now")
                          ] = False,
          no_cache: Annotated[bool, typer.Option(
              "--no-cache", help="Run them for real even if cached outputs are intact")] = False,
          yes: Annotated[bool, typer.Option(
              "--yes", "-y", help="Stop running instances without asking")] = False,
          dags_folder: DagsFolder = None) -> None:
    """Reset task instances (and their downstream) so they run again; running ones stop."""
    engine = open_engine(dags_folder)
    dag = engine.get_dag(dag_id)
    running = [r for r in run_control.matching(engine.store, dag, run_id=run_id,
                                               task_regex=task_regex, downstream=downstream,
                                               only_failed=only_failed)
               if r.state in (S.RUNNING, S.QUEUED)]
    if running:
        _confirm_stop(running, yes)
    cleared = engine.clear(dag, run_id=run_id, task_regex=task_regex, downstream=downstream,
                           only_failed=only_failed, stop_running=bool(running))
    if no_cache and cleared:
        engine.store.forget_cache(dag_id, run_id, {k.task_id for k in cleared})
    console.print(f"cleared {len(cleared)} task instance(s)")
    for key in cleared:
        console.print(f"  {key}")
    if running:
        left = run_control.wait_stopped(engine.store, running,
                                        timeout=2 * engine.settings.task_lease_s)
        for key in left:
            console.print(f"  {key} is still stopping", markup=False)
    if wait:
        from mlpipe.cli.dags import report_run

        for rid in sorted({k.run_id for k in cleared}):
            report_run(engine.run(dag, rid))


def _confirm_stop(running: list[TaskInstanceRecord], yes: bool) -> None:
    listing = ", ".join(f"{r.task_id}" + (f"[{r.map_index}]" if r.map_index >= 0 else "")
                        + f" of {r.run_id} ({r.state})" for r in running)
    if yes:
        return
    if not sys.stdin.isatty():
        raise DagDefinitionError(f"{len(running)} instance(s) are running or queued "
                                 f"({listing}): pass --yes to stop and clear them")
    typer.confirm(f"Stop and clear {len(running)} running instance(s): {listing}?",
                  abort=True)


@app.command("set-state")
@guarded
def set_state(dag_id: str, run_id: str, task_id: str,
              state: Annotated[str, typer.Argument(help="success, failed or skipped")],
              map_index: MapIndex = -1, dags_folder: DagsFolder = None) -> None:
    """Set one task instance's state (a running try stops itself)."""
    engine = open_engine(dags_folder)
    dag = engine.get_dag(dag_id)
    key = TIKey(dag_id, run_id, task_id, map_index)
    before = run_control.set_task_state(engine.store, dag, key, state)
    console.print(f"{key}: {before} -> {state}", markup=False)


@app.command("list")
@guarded
def list_tasks(dag_id: str, output: Output = OutputFormat.table,
               dags_folder: DagsFolder = None) -> None:
    """The DAG's tasks in run order (each after every task it depends on)."""
    dag = open_engine(dags_folder).get_dag(dag_id)
    rows = [{"task_id": t.task_id, "operator": t.task_type,
             "upstream": ",".join(sorted(t.upstream_task_ids)),
             "trigger_rule": str(t.trigger_rule), "retries": t.retries}
            for t in dag.topological_sort()]
    print_rows(rows, ["task_id", "operator", "upstream", "trigger_rule", "retries"], output)
