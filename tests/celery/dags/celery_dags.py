"""DAGs for the Celery tests. Every task returns where and when it ran (worker home, pid,
CUDA_VISIBLE_DEVICES, start and end), so a test can check routing, GPUs and overlaps.

Queue names carry ``MLPIPE_TEST_QUEUE_PREFIX`` (read when the file is parsed, by the test
and by its workers alike): tests share brokers, never queues.
"""

from __future__ import annotations

import os
import socket
import time
from datetime import timedelta
from pathlib import Path

from mlpipe import DAG
from mlpipe.operators import PythonOperator

Q = os.environ.get("MLPIPE_TEST_QUEUE_PREFIX", "")


def where(nap: float = 0.0, **_: object) -> dict[str, object]:
    start = time.time()
    time.sleep(nap)
    return {"home": os.environ.get("MLPIPE_HOME"), "pid": os.getpid(),
            "host": socket.gethostname(), "cuda": os.environ.get("CUDA_VISIBLE_DEVICES"),
            "start": start, "end": time.time()}


def journal(conf, ti) -> dict[str, object]:
    """Appends ``try pid`` to ``conf["journal"]``: a test counts how often it really ran."""
    with open(Path(conf["journal"]), "a", encoding="utf-8") as fh:
        fh.write(f"{ti.try_number} {os.getpid()}\n")
    print("journal written by", os.getpid())
    return where(0.3)


def killable(conf, ti) -> dict[str, object]:
    """Try 1 writes a marker and waits to be killed; try 2 checks try 1's process is gone."""
    marker = Path(conf["markers"]) / f"try-{ti.try_number}"
    first = Path(conf["markers"]) / "try-1"
    previous_alive = None
    if ti.try_number > 1 and first.exists():
        pid = int(first.read_text())
        try:
            os.kill(pid, 0)
            previous_alive = True
        except ProcessLookupError:
            previous_alive = False
    marker.write_text(str(os.getpid()))
    if ti.try_number == 1:
        time.sleep(120)
    return {**where(), "previous_alive": previous_alive}


with DAG("celery_queues", tags=["test"]) as celery_queues:
    prepare = PythonOperator(task_id="prepare", python_callable=where, queue=f"{Q}default")
    gpu_tasks = [
        PythonOperator(task_id=f"train_{i}", python_callable=where, op_kwargs={"nap": 0.4},
                       queue=f"{Q}gpu", resources={"gpu": 1})
        for i in range(2)]
    report = PythonOperator(task_id="report", python_callable=where, queue=f"{Q}default")
    prepare >> gpu_tasks >> report

with DAG("celery_pool", tags=["test"]) as celery_pool:
    for i in range(3):
        PythonOperator(task_id=f"pooled_{i}", python_callable=where, op_kwargs={"nap": 0.3},
                       queue=f"{Q}shared", pool="single")

with DAG("celery_too_big", tags=["test"]) as celery_too_big:
    PythonOperator(task_id="needs_two_gpus", python_callable=where, queue=f"{Q}gpu",
                   resources={"gpu": 2})

with DAG("celery_once", tags=["test"]) as celery_once:
    PythonOperator(task_id="once", python_callable=journal, queue=f"{Q}default")

with DAG("celery_kill", tags=["test"]) as celery_kill:
    PythonOperator(task_id="killable", python_callable=killable, queue=f"{Q}kill",
                   retries=1, retry_delay=timedelta(0))

with DAG("celery_nap", tags=["test"]) as celery_nap:
    PythonOperator(task_id="nap", python_callable=where, op_kwargs={"nap": 3.0},
                   queue=f"{Q}term")

with DAG("celery_max_active", tags=["test"], max_active_tasks=1) as celery_max_active:
    for i in range(3):
        PythonOperator(task_id=f"limited_{i}", python_callable=where, op_kwargs={"nap": 0.3},
                       queue=f"{Q}shared")

with DAG("celery_priority", tags=["test"]) as celery_priority:
    for weight in (1, 5, 9):
        PythonOperator(task_id=f"weight_{weight}", python_callable=where,
                       queue=f"{Q}prio", priority_weight=weight)
