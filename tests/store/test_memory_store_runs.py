"""``test_store_runs``'s tests on a ``MemoryStore``: it answers as the SQL store does."""

from __future__ import annotations

import memory_suite
import pytest
import test_store_runs

from mlpipe.store.memory import MemoryStore

ADOPTED = memory_suite.adopt(test_store_runs, globals())


@pytest.fixture
def store() -> MemoryStore:
    """A fresh memory store, in place of the SQL one the adopted tests were written for."""
    return MemoryStore()


def test_the_adopted_tests_run_on_the_memory_store(store: MemoryStore) -> None:
    assert type(store) is MemoryStore
    assert len(ADOPTED) >= 5, ADOPTED
