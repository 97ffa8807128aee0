"""The README's example: a small TaskFlow ETL with a branch, a Bash task and mapping."""

from datetime import datetime

from mlpipe import dag, task
from mlpipe.operators import BashOperator


@dag(schedule="@daily", start_date=datetime(2024, 1, 1), default_args={"retries": 2})
def example_etl(min_total: int = 10):
    @task
    def extract() -> list[int]:
        return [3, 5, 7]

    @task
    def square(x: int) -> int:
        return x * x

    @task
    def total(values: list[int]) -> int:
        return sum(values)

    @task.branch
    def check(total: int, params=None):
        return "report" if total >= params["min_total"] else "alert"

    report = BashOperator(task_id="report", bash_command="echo total={{ ti.xcom_pull('total') }}")
    alert = BashOperator(task_id="alert", bash_command="echo too small")
    check(total(square.expand(x=extract()))) >> [report, alert]


example_etl()
