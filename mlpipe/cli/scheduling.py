"""``mlpipe scheduler``, ``mlpipe pools ...`` and ``mlpipe dags backfill``."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Annotated

import typer

from mlpipe.cli.common import DagsFolder, Output, open_engine
from mlpipe.cli.output import OutputFormat, console, guarded, print_rows
from mlpipe.errors import StoreError
from mlpipe.runtime.log_capture import FORMAT

pools_app = typer.Typer(help="Limit how many task instances run at once per pool.",
                        no_args_is_help=True)


@guarded
def scheduler(
    dags_folder: DagsFolder = None,
    num_loops: Annotated[int | None, typer.Option("--num-loops", "-n",
                                                  help="Stop after N loops")] = None,
    grace_period: Annotated[float, typer.Option(help="Seconds running tasks get on SIGTERM")
                            ] = 30.0,
    metrics_port: Annotated[int | None, typer.Option(
        "--metrics-port", min=0, max=65535,
        help="Serve Prometheus metrics on 127.0.0.1:PORT (0 picks a free port)")] = None,
) -> None:
    """Run the scheduler: create due runs, run their tasks, until SIGTERM or Ctrl-C."""
    from mlpipe.scheduler.scheduler_job import Scheduler

    engine = open_engine(dags_folder)
    job = Scheduler(engine, grace_period=grace_period)
    job.lock.acquire()  # refuse a second scheduler before printing anything
    console.print(f"scheduler {job.id}: dags {engine.settings.dags_folder}, executor "
                  f"{engine.settings.executor}, database "
                  f"{engine.store.engine.url.render_as_string(hide_password=True)}")
    if metrics_port is not None:
        from mlpipe.web.metrics import SchedulerMetrics

        metrics = SchedulerMetrics(engine.store)
        job.on_loop = metrics.observe_loop
        console.print(f"metrics: http://127.0.0.1:{metrics.serve(metrics_port)}/metrics",
                      markup=False)
    with _scheduler_log_on_stderr():
        job.run(max_loops=num_loops)


@contextlib.contextmanager
def _scheduler_log_on_stderr() -> Iterator[None]:
    """The scheduler's own INFO lines on stderr while it runs (task output belongs in task
    logs only). Its own handler: the handlers already on the root logger are not touched."""
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter(FORMAT))
    handler.addFilter(lambda record: record.name.startswith("mlpipe.")
                      and not record.name.startswith("mlpipe.task"))
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    if root.level == logging.NOTSET or root.level > logging.INFO:
        root.setLevel(logging.INFO)
    try:
        yield
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


@pools_app.command("set")
@guarded
def pools_set(name: str, slots: int,
              description: Annotated[str, typer.Option("--description")] = "") -> None:
    """Create or resize a pool."""
    if slots < 0:
        raise StoreError(f"pool {name!r}: slots must be 0 or more, got {slots}")
    engine = open_engine(None, check_folder=False)
    engine.store.set_pool(name, slots, description)
    console.print(f"pool {name}: {slots} slot(s)")


@pools_app.command("list")
@guarded
def pools_list(output: Output = OutputFormat.table) -> None:
    """Pools with their slots and how many are in use."""
    engine = open_engine(None, check_folder=False)
    print_rows(engine.store.list_pools(), ["pool", "slots", "used", "description"], output)


@pools_app.command("delete")
@guarded
def pools_delete(name: str) -> None:
    """Delete a pool (tasks that name it will fail until it exists again)."""
    engine = open_engine(None, check_folder=False)
    if not engine.store.delete_pool(name):
        known = [p["pool"] for p in engine.store.list_pools()]
        raise StoreError(f"pool {name!r} does not exist; pools: {known}")
    console.print(f"pool {name} deleted")
