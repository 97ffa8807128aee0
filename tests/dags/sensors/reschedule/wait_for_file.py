"""A reschedule-mode sensor waits for a file that an independent task writes.

With one executor slot this only finishes if the waiting sensor gives its slot up.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from mlpipe import DAG
from mlpipe.operators import PythonOperator
from mlpipe.sensors import FileSensor

FLAG = Path(os.environ["MLPIPE_HOME"]) / "flag.txt"


def write_flag() -> float:
    time.sleep(1.0)  # the sensor pokes (and is rescheduled) at least once meanwhile
    FLAG.write_text("here")
    return time.time()


with DAG("wait_for_file", schedule=None, max_active_tasks=4) as dag:
    FileSensor("wait", filepath=str(FLAG), poke_interval=0.5, timeout=60, mode="reschedule")
    PythonOperator("other", python_callable=write_flag)
