"""Six tasks in a row; each journals its start and end. ``t3`` runs longest, so a test can
kill the scheduler while it runs and a new scheduler finds it still running."""

import os
import time
from datetime import timedelta
from pathlib import Path

from mlpipe import DAG, chain
from mlpipe.operators import PythonOperator

DURATIONS = {"t1": 0.5, "t2": 0.5, "t3": 2.0, "t4": 0.5, "t5": 0.5, "t6": 0.5}


def _journal(event, ti):
    with open(Path(os.environ["MLPIPE_HOME"]) / "journal.txt", "a") as fh:
        fh.write(f"{event} {ti.task_id} {os.getpid()} {ti.try_number}\n")


def work(ti):
    _journal("start", ti)
    time.sleep(DURATIONS[ti.task_id])
    _journal("end", ti)


with DAG("journal_chain", default_args={"retries": 1, "retry_delay": timedelta(0)}):
    chain(*[PythonOperator(task_id=t, python_callable=work) for t in DURATIONS])
