"""Four daily intervals to catch up, one run at a time, each run taking half a second."""

import time
from datetime import UTC, datetime

from mlpipe import DAG
from mlpipe.operators import PythonOperator


def nap():
    time.sleep(0.5)


with DAG("one_at_a_time", schedule="@daily", start_date=datetime(2024, 1, 1, tzinfo=UTC),
         end_date=datetime(2024, 1, 4, tzinfo=UTC), catchup=True, max_active_runs=1):
    PythonOperator(task_id="nap", python_callable=nap)
