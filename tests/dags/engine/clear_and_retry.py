"""``clear_rerun``: a >> b >> c plus an independent d; b fails until ``conf["marker"]`` exists.

``retry_logs``: ``flaky`` prints which try it is and fails its first try (one retry).
Tasks append ``<task_id> <try_number>`` to ``conf["journal"]`` when given.
"""

from __future__ import annotations

from pathlib import Path

from mlpipe import DAG
from mlpipe.operators import PythonOperator


def _journal(conf, ti) -> None:
    if conf.get("journal"):
        with open(Path(conf["journal"]), "a", encoding="utf-8") as fh:
            fh.write(f"{ti.task_id} {ti.try_number}\n")


def step(conf, ti):
    _journal(conf, ti)
    return ti.task_id


def fail_once(conf, ti):
    _journal(conf, ti)
    marker = Path(conf["marker"])
    if not marker.exists():
        marker.write_text("failed once")
        raise RuntimeError("b fails the first time")
    return "b"


def flaky(ti):
    print(f"hello from try {ti.try_number}")
    if ti.try_number == 1:
        raise RuntimeError("first try fails")
    return "fine"


with DAG("clear_rerun") as clear_rerun:
    a = PythonOperator(task_id="a", python_callable=step)
    b = PythonOperator(task_id="b", python_callable=fail_once)
    c = PythonOperator(task_id="c", python_callable=step)
    PythonOperator(task_id="d", python_callable=step)
    a >> b >> c

with DAG("retry_logs") as retry_logs:
    PythonOperator(task_id="flaky", python_callable=flaky, retries=1, retry_delay=0)
