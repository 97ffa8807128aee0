"""``waiter`` waits (reschedule mode) for ``producer.make`` at the same logical date;
``doomed`` waits for a task that fails."""

from __future__ import annotations

from mlpipe import DAG
from mlpipe.operators import PythonOperator
from mlpipe.sensors import ExternalTaskSensor


def explode() -> None:
    raise RuntimeError("producer broke")


with DAG("producer", schedule=None) as producer:
    PythonOperator("make", python_callable=lambda: 42)
    PythonOperator("break_", python_callable=explode)

with DAG("waiter", schedule=None) as waiter:
    ExternalTaskSensor("wait_make", external_dag_id="producer", external_task_id="make",
                       poke_interval=0.2, timeout=30, mode="reschedule")

with DAG("doomed", schedule=None) as doomed:
    ExternalTaskSensor("wait_break", external_dag_id="producer", external_task_id="break_",
                       failed_states=["failed", "upstream_failed"], poke_interval=0.2,
                       timeout=30)
