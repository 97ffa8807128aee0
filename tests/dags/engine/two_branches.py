"""20 tasks: ``start``, two chains of nine (``a_1..a_9``, ``b_1..b_9``), ``end``; each naps."""

from __future__ import annotations

import time

from mlpipe import DAG, chain
from mlpipe.operators import PythonOperator


def nap(conf):
    time.sleep(float(conf.get("nap", 0.3)))


with DAG("two_branches") as dag:
    start = PythonOperator(task_id="start", python_callable=nap)
    end = PythonOperator(task_id="end", python_callable=nap)
    for branch in ("a", "b"):
        steps = [PythonOperator(task_id=f"{branch}_{i}", python_callable=nap)
                 for i in range(1, 10)]
        chain(start, *steps, end)
