"""A DAG whose BashOperator runs ``greet.sh``, a Jinja template next to this file."""

from __future__ import annotations

from mlpipe import DAG
from mlpipe.operators import BashOperator

with DAG("bash_script", params={"name": "world"}) as dag:
    BashOperator(task_id="greet", bash_command="greet.sh")
