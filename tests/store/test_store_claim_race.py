"""``claim`` under real concurrency: of many threads or processes racing to claim one queued
task instance, exactly one wins, on every backend.

Each round releases all racers at once from a barrier, over several instances, so the
claims really overlap; each racer uses the store as the engine does (threads share one
store and its pool; processes open their own).
"""

from __future__ import annotations

import multiprocessing
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from mlpipe.store.entities import DagRunRecord, TIKey
from mlpipe.store.metadata_store import MetadataStore

THREADS = 8
PROCESSES = 2
ROUNDS = 5


@pytest.fixture
def contested(store: MetadataStore, make_run: Callable[..., DagRunRecord]) -> list[TIKey]:
    """``ROUNDS`` queued instances, one to fight over per round."""
    tasks = [(f"task_{i}", -1) for i in range(ROUNDS)]
    make_run("race", "r1", tasks=tasks)
    keys = [TIKey("race", "r1", task_id, -1) for task_id, _ in tasks]
    for key in keys:
        assert store.transition(key, ["none"], "queued")
    return keys


def assert_one_winner_each(store: MetadataStore, keys: list[TIKey],
                           wins: dict[TIKey, list[int]], racers: int) -> None:
    for key in keys:
        assert len(wins[key]) == racers, f"{key}: not every racer reported"
        assert sum(wins[key]) == 1, f"{key}: {sum(wins[key])} of {racers} claims succeeded"
        ti = store.get_ti(key)
        assert ti is not None and (ti.state, ti.try_number) == ("running", 1)
        assert ti.pid in [racer for racer, won in enumerate(wins[key]) if won]
    claims = [t for t in store.transitions("race", "r1") if t.to_state == "running"]
    assert sorted(t.task_id for t in claims) == sorted(k.task_id for k in keys)


def test_one_of_many_threads_claims_a_queued_instance(store: MetadataStore,
                                                      contested: list[TIKey]) -> None:
    barrier = threading.Barrier(THREADS)

    def race(racer: int) -> list[bool]:
        won = []
        for key in contested:
            barrier.wait(timeout=30)
            won.append(store.claim(key, pid=racer) is not None)
        return won

    with ThreadPoolExecutor(THREADS) as pool:
        results = list(pool.map(race, range(THREADS)))

    wins = {key: [int(results[r][i]) for r in range(THREADS)]
            for i, key in enumerate(contested)}
    assert_one_winner_each(store, contested, wins, THREADS)


def _claim_in_a_process(url: str, racer: int, keys: list[TIKey], barrier: Any,
                        results: Any) -> None:
    store = MetadataStore.open(url, migrate=False)
    try:
        for key in keys:
            barrier.wait(timeout=30)
            results.put((key, racer, store.claim(key, pid=racer) is not None))
    finally:
        store.dispose()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork to start racers quickly")
def test_one_of_two_processes_claims_a_queued_instance(store: MetadataStore, store_url: str,
                                                       contested: list[TIKey]) -> None:
    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(PROCESSES)
    results = context.Queue()
    store.engine.dispose()  # no pooled connection may cross the fork
    racers = [context.Process(target=_claim_in_a_process,
                              args=(store_url, racer, contested, barrier, results))
              for racer in range(PROCESSES)]
    for process in racers:
        process.start()

    wins: dict[TIKey, list[int]] = {key: [0] * PROCESSES for key in contested}
    for _ in range(PROCESSES * len(contested)):
        key, racer, won = results.get(timeout=60)
        wins[TIKey(*key)][racer] = int(won)
    for process in racers:
        process.join(timeout=30)
        assert process.exitcode == 0

    assert_one_winner_each(store, contested, wins, PROCESSES)
