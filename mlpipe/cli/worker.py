"""``mlpipe worker``: a Celery worker that runs the tries the ``celery`` executor sends."""

from __future__ import annotations

import os
import re
import socket
from pathlib import Path
from typing import Annotated

import typer

from mlpipe.cli.common import DagsFolder
from mlpipe.cli.output import console, guarded
from mlpipe.errors import SettingsError

_QUEUE = re.compile(r"[A-Za-z0-9_.\-]{1,100}")


def _queues(value: str) -> tuple[str, ...]:
    names = tuple(q.strip() for q in value.split(",") if q.strip())
    bad = [q for q in names if not _QUEUE.fullmatch(q)]
    if not names or bad:
        raise SettingsError(f"--queues {value!r}: give comma-separated queue names made of "
                            f"letters, digits, '_', '.', '-' (bad: {bad or [value]})")
    return names


@guarded
def worker(
    queues: Annotated[str, typer.Option("--queues", "-q",
                                        help="Comma-separated queues to take tries from")
                      ] = "default",
    concurrency: Annotated[int | None, typer.Option(
        "--concurrency", "-c", help="Tries run at once (default: the core count)")] = None,
    gpus: Annotated[str | None, typer.Option(
        help="GPU indices tries may hold, e.g. 0,1 (default: none)")] = None,
    cpus: Annotated[float | None, typer.Option(
        help="CPUs tries' resources={'cpu': n} count against (default: not counted)")] = None,
    memory_gb: Annotated[float | None, typer.Option(
        "--memory-gb", help="Memory tries' resources={'memory_gb': x} count against")] = None,
    name: Annotated[str | None, typer.Option(
        "--name", "-n", help="Worker name (default: mlpipe-PID@HOST)")] = None,
    dags_folder: DagsFolder = None,
) -> None:
    """Run a Celery worker for the celery executor until SIGTERM (running tries finish)."""
    from mlpipe.executors.celery.executor import refuse_sqlite, warn_local_artifacts
    from mlpipe.executors.celery.worker import FreshDags, TryWorker, run_worker
    from mlpipe.executors.resources import SlotAllocator, parse_gpus
    from mlpipe.scheduler.service import Engine
    from mlpipe.settings import load_settings

    names = _queues(queues)
    if concurrency is not None and not 1 <= concurrency <= 1024:
        raise SettingsError(f"--concurrency {concurrency}: give a number from 1 to 1024")
    for option, amount in (("--cpus", cpus), ("--memory-gb", memory_gb)):
        if amount is not None and not amount > 0:
            raise SettingsError(f"{option} {amount:g}: give a positive number")
    try:
        gpu_list = parse_gpus(gpus)
    except ValueError as exc:
        raise SettingsError(f"--gpus {gpus!r}: {exc}") from None
    settings = load_settings(**({"dags_folder": dags_folder} if dags_folder else {}))
    refuse_sqlite(settings.database)
    if not settings.dags_folder.is_dir():
        raise SettingsError(f"dags folder {str(settings.dags_folder)!r} does not exist; "
                            "workers need the scheduler's DAG files (pass --dags-folder)")
    warn_local_artifacts(settings.artifacts)
    engine = Engine.from_settings(settings, migrate=False)
    dags = FreshDags(Path(settings.dags_folder), parse_timeout=settings.dag_parse_timeout_s)
    runner = engine.try_runner()
    runner.dag_provider = dags
    slots = SlotAllocator(gpu_list, cpus=cpus, memory_gb=memory_gb)
    host = socket.gethostname()
    job = TryWorker(runner, slots, name=name or f"mlpipe-{os.getpid()}@{host}", queues=names)
    console.print(f"worker {job.name}: queues {list(names)}, broker "
                  f"{_hide_password(settings.celery_broker_url)}, {slots.describe()}")
    run_worker(job, broker_url=settings.celery_broker_url,
               concurrency=concurrency or os.cpu_count() or 1, lease_s=settings.task_lease_s)


def _hide_password(url: str) -> str:
    return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", url)
