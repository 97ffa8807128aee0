"""A slow task then a quick one; one run at a time."""

import time

from mlpipe import DAG
from mlpipe.operators import PythonOperator


def slow():
    time.sleep(1.5)


with DAG("graceful", max_active_runs=1):
    PythonOperator(task_id="slow", python_callable=slow) >> \
        PythonOperator(task_id="after", python_callable=lambda: "after")
