"""The public names of ``mlpipe``, and that importing them stays light."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import mlpipe
import mlpipe.operators

PUBLIC_NAMES = [
    "Asset",
    "DAG",
    "Dataset",
    "DatasetAll",
    "DatasetAny",
    "Param",
    "TaskGroup",
    "TriggerRule",
    "XComArg",
    "__version__",
    "chain",
    "dag",
    "task",
    "task_group",
]

HEAVY_MODULES = ["boto3", "mlflow", "sqlalchemy", "torch", "torchvision"]


def test_public_names_are_locked() -> None:
    assert mlpipe.__all__ == PUBLIC_NAMES


def test_public_names_are_sorted_and_importable() -> None:
    assert mlpipe.__all__ == sorted(mlpipe.__all__)
    for name in mlpipe.__all__:
        assert getattr(mlpipe, name) is not None


def test_operator_names_are_exported() -> None:
    assert mlpipe.operators.__all__ == sorted(mlpipe.operators.__all__)
    for name in ("BashOperator", "BranchPythonOperator", "EmptyOperator", "PythonOperator",
                 "ShortCircuitOperator"):
        assert name in mlpipe.operators.__all__
        assert getattr(mlpipe.operators, name).__name__ == name


@pytest.mark.parametrize("module", ["mlpipe", "mlpipe.operators"])
def test_import_does_not_load_heavy_libraries(module: str) -> None:
    probe = (
        f"import json, sys; import {module}; "
        f"print(json.dumps(sorted(m for m in sys.modules "
        f"if m.split('.')[0] in {HEAVY_MODULES!r})))"
    )

    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )

    assert json.loads(result.stdout) == []


def test_heavy_library_probe_can_see_a_loaded_module() -> None:
    # Guards the test above: the same probe reports a module that *is* imported.
    probe = (
        "import json, sys; import mlpipe, sqlite3; "
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] == 'sqlite3')))"
    )

    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )

    assert "sqlite3" in json.loads(result.stdout)
