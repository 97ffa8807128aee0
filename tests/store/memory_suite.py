"""Re-running a SQL store test module on ``MemoryStore`` (``dag.test()``'s store).

``adopt(suite, namespace)`` copies a suite's fixtures and the tests that use only what the
memory store has into a ``test_memory_*`` module, whose own ``store`` fixture (a fresh
``MemoryStore``) then overrides the SQL one for them: the same assertions hold for both.
"""

from __future__ import annotations

import inspect
from types import ModuleType
from typing import Any

#: what only the SQL store has: dag.test() neither lists runs nor clears nor pauses DAGs
SQL_ONLY = ("clear_tis", "clear_xcoms", "sync_dags", "set_paused", "get_dag", "list_dags",
            "import_errors", "list_runs", "latest_run", "start_run_if_room",
            "automated_run_at", "latest_scheduled_run", ".engine", ".writer", "store_url")


def _is_fixture(value: Any) -> bool:
    return type(value).__name__ == "FixtureFunctionDefinition" or hasattr(
        value, "_pytestfixturefunction")


def adopt(suite: ModuleType, namespace: dict[str, Any]) -> list[str]:
    """Copy ``suite``'s fixtures and portable tests into ``namespace``; the tests' names."""
    adopted = []
    for name, value in vars(suite).items():
        if name == "store" or name.startswith("_"):
            continue
        if _is_fixture(value):
            namespace[name] = value
        elif name.startswith("test_") and callable(value) and not any(
                word in inspect.getsource(value) for word in SQL_ONLY):
            namespace[name] = value
            adopted.append(name)
    return adopted
