"""The public names of ``mlpipe.sensors`` and ``mlpipe.notifications`` (SPEC section 3),
and that importing them (and ``@task.sensor``) stays light."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import mlpipe.notifications
import mlpipe.sensors

HEAVY_MODULES = ["boto3", "botocore", "mlflow", "sqlalchemy", "torch", "torchvision"]


def test_sensor_and_notifier_names_are_locked() -> None:
    assert mlpipe.sensors.__all__ == [
        "BaseSensorOperator", "ExternalTaskSensor", "FileSensor", "PokeReturnValue",
        "PythonSensor", "S3KeySensor", "TimeDeltaSensor"]
    assert mlpipe.notifications.__all__ == [
        "BaseNotifier", "EmailNotifier", "SlackNotifier", "WebhookNotifier", "message_fields"]
    for module in (mlpipe.sensors, mlpipe.notifications):
        for name in module.__all__:
            assert getattr(module, name).__name__ == name


@pytest.mark.parametrize("module", ["mlpipe.sensors", "mlpipe.notifications"])
def test_importing_them_loads_no_heavy_library(module: str) -> None:
    probe = (f"import json, sys; import {module}; from mlpipe import task; task.sensor; "
             f"print(json.dumps(sorted(m for m in sys.modules "
             f"if m.split('.')[0] in {HEAVY_MODULES!r})))")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            check=True, timeout=60)
    assert json.loads(result.stdout) == []
