"""200 tiny tasks (10 chains of 20) with exactly one due interval: 2024-01-01."""

from datetime import UTC, datetime

from mlpipe import DAG, chain
from mlpipe.operators import EmptyOperator

DAY = datetime(2024, 1, 1, tzinfo=UTC)

with DAG("wide", schedule="@daily", start_date=DAY, end_date=DAY, catchup=True,
         max_active_tasks=64):
    for c in range(10):
        chain(*[EmptyOperator(task_id=f"c{c}_{i:02d}") for i in range(20)])
