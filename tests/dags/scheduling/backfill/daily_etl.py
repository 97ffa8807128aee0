"""A daily DAG in January 2024 whose ``load`` fails for the dates listed in
``$MLPIPE_HOME/fail_dates.txt``; every try is journaled."""

import os
from datetime import UTC, datetime
from pathlib import Path

from mlpipe import DAG
from mlpipe.operators import PythonOperator


def _home() -> Path:
    return Path(os.environ["MLPIPE_HOME"])


def _journal(ti, ds):
    with open(_home() / "journal.txt", "a") as fh:
        fh.write(f"run {ti.task_id} {os.getpid()} {ti.try_number} {ds}\n")


def extract(ti, ds):
    _journal(ti, ds)


def load(ti, ds):
    _journal(ti, ds)
    failing = _home() / "fail_dates.txt"
    if failing.exists() and ds in failing.read_text().split():
        raise RuntimeError(f"load of {ds} told to fail")


with DAG("daily_etl", schedule="@daily", start_date=datetime(2024, 1, 1, tzinfo=UTC),
         end_date=datetime(2024, 1, 31, tzinfo=UTC), catchup=False):
    PythonOperator(task_id="extract", python_callable=extract) >> \
        PythonOperator(task_id="load", python_callable=load)

with DAG("unscheduled", schedule=None):
    PythonOperator(task_id="extract", python_callable=extract)
