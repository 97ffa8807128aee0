"""Four independent tasks in pool ``train``, and a task naming a pool nobody created."""

import time

from mlpipe import DAG
from mlpipe.operators import PythonOperator


def nap():
    time.sleep(0.4)


with DAG("pooled", max_active_tasks=16):
    for i in range(4):
        PythonOperator(task_id=f"train_{i}", python_callable=nap, pool="train")

with DAG("missing_pool"):
    PythonOperator(task_id="orphan", python_callable=nap, pool="nowhere")
