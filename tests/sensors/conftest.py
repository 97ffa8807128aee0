"""Engines over the sensor DAG folders, and bounded waits."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from mlpipe.scheduler.service import Engine
from mlpipe.settings import load_settings

DAGS = Path(__file__).resolve().parents[1] / "dags" / "sensors"


@pytest.fixture
def make_engine() -> Iterator[Callable[..., Engine]]:
    """``make_engine(folder, **settings)``: an engine over ``tests/dags/sensors/<folder>``."""
    engines: list[Engine] = []

    def make(folder: str, **overrides: Any) -> Engine:
        values = {"executor": "local", "parallelism": 1, "task_lease_s": 5,
                  "dags_folder": DAGS / folder, **overrides}
        engine = Engine.from_settings(load_settings(**values))
        engines.append(engine)
        return engine

    yield make
    for engine in engines:
        engine.store.dispose()
