"""Tasks whose process gets killed, stopped or times out.

``victim`` writes its PID to ``conf["pid_file"]`` and sleeps on its first try; a later try
returns at once. ``hang`` starts ``sleep 60``, writes that grandchild's PID to
``conf["pid_file"]`` and sleeps past its one-second ``execution_timeout``.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

from mlpipe import DAG
from mlpipe.operators import PythonOperator


def _write_pid(path: str, pid: int) -> None:
    tmp = Path(path + ".tmp")
    tmp.write_text(str(pid))
    tmp.rename(path)  # readers never see a half-written file


def victim(conf, ti):
    print(f"victim try {ti.try_number}")
    if ti.try_number == 1:
        _write_pid(conf["pid_file"], os.getpid())
        time.sleep(60)
    return f"recovered on try {ti.try_number}"


def hang(conf):
    child = subprocess.Popen(["sleep", "60"])
    _write_pid(conf["pid_file"], child.pid)
    time.sleep(60)


with DAG("victim_with_retry") as with_retry:
    PythonOperator(task_id="victim", python_callable=victim, retries=1, retry_delay=0)

with DAG("victim_without_retry") as without_retry:
    PythonOperator(task_id="victim", python_callable=victim, retries=0) >> \
        PythonOperator(task_id="after", python_callable=lambda: "after")

with DAG("task_timeout") as timeout_dag:
    PythonOperator(task_id="hang", python_callable=hang, execution_timeout=1)
