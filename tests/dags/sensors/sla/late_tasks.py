"""A slow task past its SLA, a fast one within it, and a run past the DAG's deadline.

Misses POST to ``SENSOR_TEST_WEBHOOK`` and append a line to ``$MLPIPE_HOME/misses.txt``.
"""

from __future__ import annotations

import os
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from mlpipe import DAG
from mlpipe.notifications import WebhookNotifier
from mlpipe.operators import PythonOperator

JOURNAL = Path(os.environ["MLPIPE_HOME"]) / "misses.txt"


def note_miss(context: dict[str, Any]) -> None:
    with JOURNAL.open("a") as fh:
        fh.write(f"{context['reason']} {context['task_id']}\n")


with DAG("late_tasks", schedule=None, deadline=timedelta(seconds=1),
         on_sla_miss_callback=[WebhookNotifier(os.environ["SENSOR_TEST_WEBHOOK"], timeout=5),
                               note_miss]) as dag:
    fast = PythonOperator("fast", python_callable=lambda: "quick", sla=timedelta(seconds=60))
    slow = PythonOperator("slow", python_callable=lambda: time.sleep(2.5),
                          sla=timedelta(seconds=0.5))
    fast >> slow
