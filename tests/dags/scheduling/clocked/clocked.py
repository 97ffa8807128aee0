"""Scheduled DAGs for the fake-clock tests: every six hours from 2024-01-01 00:00 UTC."""

from datetime import UTC, datetime

from mlpipe import DAG
from mlpipe.operators import EmptyOperator

START = datetime(2024, 1, 1, tzinfo=UTC)
SIX_HOURLY = "0 */6 * * *"

with DAG("six_hourly_catchup", schedule=SIX_HOURLY, start_date=START, catchup=True):
    EmptyOperator(task_id="noop")

with DAG("six_hourly_latest", schedule=SIX_HOURLY, start_date=START, catchup=False):
    EmptyOperator(task_id="noop")

with DAG("once", schedule="@once", start_date=START):
    EmptyOperator(task_id="noop")

with DAG("bounded", schedule=SIX_HOURLY, start_date=START,
         end_date=datetime(2024, 1, 1, 6, tzinfo=UTC), catchup=True):
    EmptyOperator(task_id="noop")

with DAG("manual_only", schedule=None, start_date=START):
    EmptyOperator(task_id="noop")
