"""Every six hours from 2024-01-01, no catchup, one run at a time; and a DAG that asks to
start unpaused whatever MLPIPE_DAGS_PAUSED_AT_CREATION says."""

from datetime import datetime, timedelta

from mlpipe import DAG
from mlpipe.operators import EmptyOperator

with DAG("blocked", schedule=timedelta(hours=6), start_date=datetime(2024, 1, 1),
         catchup=False, max_active_runs=1) as blocked:
    EmptyOperator(task_id="t")

with DAG("always_on", is_paused_upon_creation=False) as always_on:
    EmptyOperator(task_id="t")
