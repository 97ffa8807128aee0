"""``mlpipe dags ...``: list, inspect, run, trigger and pause DAGs."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from mlpipe.cli.common import (
    DagsFolder,
    Output,
    fmt_time,
    folder_settings,
    open_engine,
    parse_conf,
)
from mlpipe.cli.output import OutputFormat, console, err_console, guarded, print_rows
from mlpipe.errors import DagDefinitionError

if TYPE_CHECKING:  # imported where used: `dags list` answers without the engine
    from mlpipe.core.dag import DAG
    from mlpipe.runtime.models import DagRun

app = typer.Typer(help="List, inspect and run DAGs.", no_args_is_help=True)


@app.command("list")
@guarded
def list_dags(
    dags_folder: DagsFolder = None, output: Output = OutputFormat.table,
    reparse: Annotated[bool, typer.Option(
        "--reparse", help="Parse every DAG file even if none changed since the last parse "
                          "recorded")] = False,
) -> None:
    """List the DAGs in the dags folder with their paused state, and files that failed.

    Answers from the DAGs recorded in the metadata database (by the scheduler or a previous
    listing) while no DAG file was added, removed or changed; else parses the folder."""
    from mlpipe.cli.dag_listing import list_folder

    rows, import_errors = list_folder(folder_settings(dags_folder), reparse=reparse)
    print_rows(rows, ["dag_id", "is_paused", "schedule", "tasks", "tags", "fileloc"], output)
    if import_errors:
        err_console.print(f"[yellow]{import_errors} DAG file(s) failed to import[/]: "
                          "see 'mlpipe dags list-import-errors'", markup=True)


@app.command("show")
@guarded
def show(dag_id: str, dot: Annotated[bool, typer.Option("--dot", help="Graphviz output")] = False,
         dags_folder: DagsFolder = None) -> None:
    """Print the DAG's tasks as a tree (or as Graphviz DOT with --dot)."""
    dag = open_engine(dags_folder).get_dag(dag_id)
    if dot:
        typer.echo(to_dot(dag))
        return
    from rich.tree import Tree

    tree = Tree(f"[bold]{dag.dag_id}[/] ({len(dag.task_dict)} tasks, in run order)")
    for task in dag.topological_sort():  # a task comes after every one it depends on
        label = f"{task.task_id} [dim]<{task.task_type}>[/]"
        if task.upstream_task_ids:
            label += f" [dim]after {', '.join(sorted(task.upstream_task_ids))}[/]"
        tree.add(label)
    console.print(tree)


def to_dot(dag: DAG) -> str:
    """The DAG as a Graphviz digraph (task groups as clusters are left to the viewer)."""
    lines = [f'digraph "{dag.dag_id}" {{', "  rankdir=LR;", "  node [shape=box];"]
    for task in dag.topological_sort():
        lines.append(f'  "{task.task_id}" [label="{task.task_id}\\n{task.task_type}"];')
    for task in dag.topological_sort():
        for down in sorted(task.downstream_task_ids):
            lines.append(f'  "{task.task_id}" -> "{down}";')
    lines.append("}")
    return "\n".join(lines)


@app.command("test")
@guarded
def test_dag(
    dag_id: Annotated[str, typer.Argument(help="The DAG to run")],
    logical_date: Annotated[str | None, typer.Argument(help="ISO date; default now")] = None,
    conf: Annotated[str | None, typer.Option("--conf", "-c", help="JSON object")] = None,
    show_logs: Annotated[bool, typer.Option(
        "--show-logs/--no-show-logs", help="Print each task's log (as Airflow's dags test)"
    )] = True,
    dags_folder: DagsFolder = None,
) -> None:
    """Run every task of a DAG in this process (throw-away store), print its logs and states."""
    run_conf = parse_conf(conf)
    dag = open_engine(dags_folder).get_dag(dag_id)
    run = dag.test(logical_date=logical_date, conf=run_conf)
    if show_logs:
        for ti in run.task_instances:
            if ti.log:
                index = f"[{ti.map_index}]" if ti.map_index >= 0 else ""
                console.rule(f"{ti.task_id}{index} try {ti.try_number}: {ti.state.value}")
                typer.echo(ti.log.rstrip("\n"))
    report_run(run)


def report_run(run: DagRun) -> None:
    """Each task instance's state, failed tasks' errors, and exit 1 unless the run succeeded."""
    rows = [
        {"task_id": ti.task_id, "map_index": ti.map_index, "state": ti.state.value,
         "try_number": ti.try_number,
         "duration": f"{ti.duration.total_seconds():.3f}s" if ti.duration else None,
         "error": ti.error}
        for ti in run.task_instances
    ]
    print_rows(rows, ["task_id", "map_index", "state", "try_number", "duration", "error"],
               OutputFormat.table, title=f"{run.dag_id} {run.run_id}")
    for ti in run.task_instances:
        if ti.error:
            index = f"[{ti.map_index}]" if ti.map_index >= 0 else ""
            err_console.print(f"{ti.task_id}{index} failed: {ti.error}", markup=False)
    from mlpipe.core.states import DagRunState

    style = "green" if run.state is DagRunState.SUCCESS else "red"
    console.print(f"DAG run {run.run_id}: [{style}]{run.state.value}[/]", markup=True)
    if run.state is not DagRunState.SUCCESS:
        raise typer.Exit(1)


@app.command("trigger")
@guarded
def trigger(
    dag_id: str,
    conf: Annotated[str | None, typer.Option("--conf", "-c", help="JSON object")] = None,
    run_id: Annotated[str | None, typer.Option("--run-id", "-r")] = None,
    logical_date: Annotated[str | None, typer.Option("--logical-date", "-e")] = None,
    wait: Annotated[bool | None, typer.Option(
        "--wait/--no-wait",
        help="Run it here with the configured executor and show progress (default when no "
             "scheduler is running on this SQLite database)")] = None,
    dags_folder: DagsFolder = None,
) -> None:
    """Create a manual run of a DAG; with --wait, execute it and show its progress."""
    from mlpipe.cli.progress import RunProgress
    from mlpipe.scheduler.runs import record_dags

    run_conf = parse_conf(conf)
    engine = open_engine(dags_folder)
    dag = engine.get_dag(dag_id)
    record = engine.trigger(dag, conf=run_conf, run_id=run_id, logical_date=logical_date)
    console.print(f"created run {record.run_id} of {dag_id}")
    if wait is None:
        from mlpipe.scheduler.scheduler_job import SchedulerLock

        lock = SchedulerLock(engine.settings.database, engine.settings.home)
        wait = not lock.held_elsewhere()
        if not wait:
            console.print("a scheduler is running: it will run it (pass --wait to run it here)")
    record_dags(engine.store, [dag], paused_by_default=engine.settings.dags_paused_at_creation)
    paused = engine.store.get_dag(dag_id)
    if paused is not None and paused.is_paused:
        message = (f"DAG {dag_id} is paused: run {record.run_id} is queued and starts when "
                   f"the DAG is unpaused ('mlpipe dags unpause {dag_id}')")
        if wait:
            raise DagDefinitionError(message)
        console.print(message, markup=False)
        return
    if not wait:
        return
    _wait_for_room(engine, dag, record.run_id)
    with RunProgress(dag, engine.settings.executor) as progress:
        run = engine.run(dag, record.run_id, on_progress=progress.update)
    report_run(run)


def _wait_for_room(engine: Any, dag: DAG, run_id: str) -> None:
    """Start the run once the DAG has fewer than ``max_active_runs`` running runs."""
    import time

    told = False
    while not engine.store.start_run_if_room(dag.dag_id, run_id, dag.max_active_runs):
        if not told:
            console.print(f"{dag.max_active_runs} run(s) of {dag.dag_id} are running "
                          "(max_active_runs): waiting for one to end", markup=False)
            told = True
        time.sleep(1.0)


@app.command("set-state")
@guarded
def set_state(dag_id: str, run_id: str,
              state: Annotated[str, typer.Argument(help="success or failed")],
              dags_folder: DagsFolder = None) -> None:
    """Mark a run success or failed (Airflow's "mark run as"); running tries stop."""
    from mlpipe.scheduler.run_control import mark_run

    engine = open_engine(dags_folder)
    changed = mark_run(engine.store, engine.get_dag(dag_id), run_id, state)
    console.print(f"run {run_id} of {dag_id} marked {state}; {len(changed)} unfinished task "
                  "instance(s) changed with it", markup=False)


@app.command("list-runs")
@guarded
def list_runs(dag_id: str, output: Output = OutputFormat.table,
              state: Annotated[str | None, typer.Option(
                  "--state", help="Only runs in this state (queued, running, success, "
                                  "failed)")] = None,
              limit: Annotated[int, typer.Option(
                  "--limit", min=1, help="At most this many of the newest runs")] = 25,
              dags_folder: DagsFolder = None) -> None:
    """The newest runs of a DAG (--limit, default 25), oldest of them first."""
    from mlpipe.core.states import DagRunState

    states = [s.value for s in DagRunState]
    if state is not None and state not in states:
        raise DagDefinitionError(f"--state {state!r} is not a run state; valid: {states}")
    engine = open_engine(dags_folder)
    engine.get_dag(dag_id)
    runs = engine.store.list_runs(dag_id, states=[state] if state else None)[-limit:]
    rows = [{"dag_id": r.dag_id, "run_id": r.run_id, "state": r.state,
             "run_type": r.run_type, "logical_date": fmt_time(r.logical_date),
             "start_date": fmt_time(r.start_date), "end_date": fmt_time(r.end_date)}
            for r in runs]
    print_rows(rows, ["dag_id", "run_id", "state", "run_type", "logical_date", "start_date",
                      "end_date"], output)


def _set_paused(dag_id: str, paused: bool, dags_folder: Any) -> None:
    engine = open_engine(dags_folder)
    engine.get_dag(dag_id)
    engine.store.set_paused(dag_id, paused)
    console.print(f"DAG {dag_id} is {'paused' if paused else 'unpaused'}")


@app.command("pause")
@guarded
def pause(dag_id: str, dags_folder: DagsFolder = None) -> None:
    """Stop the scheduler from creating runs of this DAG."""
    _set_paused(dag_id, True, dags_folder)


@app.command("unpause")
@guarded
def unpause(dag_id: str, dags_folder: DagsFolder = None) -> None:
    """Let the scheduler create runs of this DAG again."""
    _set_paused(dag_id, False, dags_folder)


@app.command("backfill")
@guarded
def backfill(
    dag_id: str,
    start_date: Annotated[str, typer.Option("--start-date", "-s", help="First logical date")],
    end_date: Annotated[str, typer.Option("--end-date", "-e", help="Last logical date")],
    rerun_failed: Annotated[bool, typer.Option("--rerun-failed",
                                               help="Clear and redo failed runs")] = False,
    reset_dagruns: Annotated[bool, typer.Option("--reset-dagruns",
                                                help="Redo every run in range")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only print the intervals")
                       ] = False,
    max_active_runs: Annotated[int | None, typer.Option("--max-active-runs")] = None,
    dags_folder: DagsFolder = None,
) -> None:
    """Run every interval whose logical date is between START and END (both inclusive)."""
    from mlpipe.cli.progress import RunProgress
    from mlpipe.core.states import DagRunState
    from mlpipe.scheduler.backfill import backfill_intervals, prepare_backfill, run_backfill

    engine = open_engine(dags_folder)
    dag = engine.get_dag(dag_id)
    intervals = backfill_intervals(dag, start_date, end_date)
    plan = prepare_backfill(engine, dag, intervals, rerun_failed=rerun_failed,
                            reset_dagruns=reset_dagruns, dry_run=dry_run)
    notes = {run_id.split("__", 1)[-1]: note for run_id, note in plan.skipped.items()}
    for interval in intervals:
        note = notes.get(interval.start.isoformat(), "to run")
        console.print(f"{interval.start.isoformat()} -> {interval.end.isoformat()}  {note}")
    if dry_run or not plan.to_run:
        console.print(f"{len(plan.to_run)} run(s) to do, {len(plan.skipped)} left alone")
        return
    failed: list[str] = []
    done = 0

    def finished(run: DagRun) -> None:
        nonlocal done
        done += 1
        if run.state is not DagRunState.SUCCESS:
            failed.append(run.run_id)
        console.print(f"[{done}/{len(plan.to_run)}] {run.run_id}: {run.state.value}")

    with RunProgress(dag, engine.settings.executor) as progress:
        progress.total = len(dag.task_dict) * len(plan.to_run)
        run_backfill(engine, dag, plan.to_run,
                     max_active_runs=max_active_runs or dag.max_active_runs,
                     on_progress=progress.update, on_run_done=finished)
    console.print(f"backfill of {dag_id}: {done - len(failed)} succeeded, {len(failed)} failed,"
                  f" {len(plan.skipped)} left alone")
    if failed:
        raise typer.Exit(1)


@app.command("list-import-errors")
@guarded
def list_import_errors(dags_folder: DagsFolder = None,
                       output: Output = OutputFormat.table) -> None:
    """DAG files that failed to import (raised, hung past the parse timeout, or exited)."""
    bag = open_engine(dags_folder).dagbag()
    rows = [{"filepath": path, "error": error}
            for path, error in sorted(bag.import_errors.items())]
    print_rows(rows, ["filepath", "error"], output)


@app.command("list-sla-misses")
@guarded
def list_sla_misses(dag_id: Annotated[str | None, typer.Argument(
                        help="Only this DAG's misses")] = None,
                    dags_folder: DagsFolder = None,
                    output: Output = OutputFormat.table) -> None:
    """Missed task SLAs and DAG deadlines, oldest first (recorded once each by the scheduler)."""
    engine = open_engine(dags_folder)
    if dag_id is not None:
        engine.get_dag(dag_id)  # an unknown DAG is one clear line naming the known ones
    rows = [{"dag_id": m.dag_id, "run_id": m.run_id, "task_id": m.task_id, "kind": m.kind,
             "deadline_at": fmt_time(m.deadline_at), "recorded_at": fmt_time(m.recorded_at)}
            for m in engine.store.list_sla_misses(dag_id)]
    print_rows(rows, ["dag_id", "run_id", "task_id", "kind", "deadline_at", "recorded_at"],
               output)


@app.command("next-execution")
@guarded
def next_execution(dag_id: str,
                   num: Annotated[int, typer.Option("--num-executions", "-n", min=1,
                                                    help="How many to show")] = 1,
                   dags_folder: DagsFolder = None) -> None:
    """The logical dates of the next scheduled runs (after the latest one that exists)."""
    from mlpipe.scheduler.runs import is_scheduled, next_logical_dates

    engine = open_engine(dags_folder)
    dag = engine.get_dag(dag_id)
    if not is_scheduled(dag):
        console.print(f"DAG {dag_id} has no schedule: runs are only triggered", markup=False)
        return
    latest = engine.store.latest_scheduled_run(dag_id)
    for interval in next_logical_dates(dag, latest.logical_date if latest else None, num):
        typer.echo(interval.start.isoformat())


@app.command("delete")
@guarded
def delete(dag_id: str,
           yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask")] = False,
           dags_folder: DagsFolder = None) -> None:
    """Delete a DAG's runs, task instances, XComs and history (the file stays)."""
    import sys

    from mlpipe.store.dag_admin import delete_dag

    engine = open_engine(dags_folder)
    known = engine.store.get_dag(dag_id) is not None or engine.store.latest_run(dag_id)
    if not known:
        engine.get_dag(dag_id)  # an unknown id names the known ones
    if not yes:
        if not sys.stdin.isatty():
            raise DagDefinitionError(f"deleting DAG {dag_id!r} removes all its runs: pass "
                                     "--yes to confirm")
        typer.confirm(f"Delete every run and record of DAG {dag_id}?", abort=True)
    runs = delete_dag(engine.store, dag_id)
    console.print(f"deleted DAG {dag_id} and its {runs} run(s); its file stays in the dags "
                  "folder, so the scheduler records it again unless it is removed",
                  markup=False)
