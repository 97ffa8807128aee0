"""Independent tasks for the executor contract: one succeeds, one fails, one skips, some nap.

Every task appends ``<task_id> <try_number> <pid>`` to ``conf["journal"]`` (when given), so a
test can count how often a task body really ran.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from mlpipe import DAG
from mlpipe.errors import TaskSkipped
from mlpipe.operators import PythonOperator


def _journal(conf, ti) -> None:
    if conf.get("journal"):
        with open(Path(conf["journal"]), "a", encoding="utf-8") as fh:
            fh.write(f"{ti.task_id} {ti.try_number} {os.getpid()}\n")


def ok(conf, ti):
    _journal(conf, ti)
    return "ok"


def boom(conf, ti):
    _journal(conf, ti)
    raise ValueError("boom on purpose")


def skip(conf, ti):
    _journal(conf, ti)
    raise TaskSkipped("nothing to do today")


def nap(conf, ti):
    _journal(conf, ti)
    time.sleep(float(conf.get("nap", 0.3)))


with DAG("executor_contract") as dag:
    PythonOperator(task_id="ok", python_callable=ok)
    PythonOperator(task_id="boom", python_callable=boom)
    PythonOperator(task_id="skip", python_callable=skip)
    for i in range(4):
        PythonOperator(task_id=f"nap_{i}", python_callable=nap)
