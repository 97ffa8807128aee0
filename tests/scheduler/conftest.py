"""Engines over the DAG modules of ``tests/dags/engine``."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from mlpipe.scheduler.service import Engine
from mlpipe.settings import load_settings

DAGS = Path(__file__).resolve().parents[1] / "dags" / "engine"


@pytest.fixture
def make_engine() -> Iterator[Callable[..., Engine]]:
    """``make_engine(**settings)``: a LocalExecutor engine (parallelism 2) over the test DAGs."""
    engines: list[Engine] = []

    def make(**overrides: Any) -> Engine:
        values = {"executor": "local", "parallelism": 2, "task_lease_s": 2,
                  "dags_folder": DAGS, **overrides}
        engine = Engine.from_settings(load_settings(**values))
        engines.append(engine)
        return engine

    yield make
    for engine in engines:
        engine.store.dispose()
