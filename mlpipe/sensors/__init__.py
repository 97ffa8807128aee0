"""Sensors: tasks that wait for a condition (a file, an S3 key, another DAG's task, a
time, a Python function), poking it every ``poke_interval``; in ``mode="reschedule"`` a
waiting sensor frees its slot (state ``up_for_reschedule``).

May import: mlpipe.core, mlpipe.errors, mlpipe.operators, mlpipe.hooks, mlpipe.connections,
mlpipe.s3 (boto3 only through the S3 hook, on the first poke).
"""

from __future__ import annotations

from mlpipe.sensors.base import BaseSensorOperator, PokeReturnValue
from mlpipe.sensors.external_task import ExternalTaskSensor
from mlpipe.sensors.filesystem import FileSensor
from mlpipe.sensors.python import PythonSensor
from mlpipe.sensors.s3_key import S3KeySensor
from mlpipe.sensors.time_delta import TimeDeltaSensor

__all__ = [
    "BaseSensorOperator",
    "ExternalTaskSensor",
    "FileSensor",
    "PokeReturnValue",
    "PythonSensor",
    "S3KeySensor",
    "TimeDeltaSensor",
]
