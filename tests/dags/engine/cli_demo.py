"""``cli_demo``: hello >> check. ``hello`` prints the conf's greeting; ``check`` fails when
``conf["fail"]`` is set, or the first time when ``conf["fail_once"]`` names a missing file.
"""

from __future__ import annotations

from pathlib import Path

from mlpipe import DAG
from mlpipe.operators import PythonOperator


def hello(conf):
    greeting = conf.get("greeting", "hello")
    print(f"greeting is {greeting}")
    return greeting


def check(conf):
    if conf.get("fail"):
        raise ValueError("asked to fail")
    marker = conf.get("fail_once")
    if marker and not Path(marker).exists():
        Path(marker).write_text("x")
        raise ValueError("failing once")
    return "checked"


with DAG("cli_demo") as dag:
    PythonOperator(task_id="hello", python_callable=hello) >> \
        PythonOperator(task_id="check", python_callable=check)
