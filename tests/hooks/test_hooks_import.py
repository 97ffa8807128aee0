"""``mlpipe.hooks`` and ``mlpipe.connections`` import no heavy library until a hook is used."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import mlpipe.connections
import mlpipe.hooks

HEAVY = ["boto3", "botocore", "cryptography", "mlflow", "sqlalchemy", "torch"]


def _loaded_after(statement: str) -> list[str]:
    probe = (f"import json, sys; {statement}; print(json.dumps(sorted("
             f"m for m in sys.modules if m.split('.')[0] in {HEAVY!r})))")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            check=True, timeout=60)
    return json.loads(result.stdout)


@pytest.mark.parametrize("statement", [
    "from mlpipe.hooks import S3Hook, SqlHook, PostgresHook, MlflowHook",
    "import mlpipe.connections",
    "from mlpipe.operators import SQLExecuteQueryOperator",
    "from mlpipe.hooks import S3Hook; S3Hook('aws_default'); import mlpipe.hooks.sql",
])
def test_importing_loads_no_heavy_library(statement: str) -> None:
    assert _loaded_after(statement) == []


def test_the_probe_sees_a_library_once_a_hook_connects() -> None:
    statement = ("import os; os.environ['MLPIPE_CONN_X'] = 's3://k:secret@/?region_name=eu-west-1'"
                 "; from mlpipe.hooks import S3Hook; S3Hook('x').get_conn()")
    assert {"boto3", "botocore"} <= set(_loaded_after(statement))


def test_public_names() -> None:
    assert mlpipe.hooks.__all__ == ["BaseHook", "MlflowHook", "PostgresHook", "S3Hook",
                                    "SqlHook", "hook_for"]
    assert "get_connection" in mlpipe.connections.__all__
    assert mlpipe.connections.__all__ == sorted(mlpipe.connections.__all__)
    assert [n for n in mlpipe.hooks.__all__ if not hasattr(mlpipe.hooks, n)] == []
    assert [n for n in mlpipe.connections.__all__ if not hasattr(mlpipe.connections, n)] == []
