"""Resource slots (``executors/resources.py``): the allocator alone, then the local executor
honouring ``resources={"gpu": n}`` with ``MLPIPE_GPUS`` (no real GPU needed: the tries report
the ``CUDA_VISIBLE_DEVICES`` they saw and when they ran)."""

from __future__ import annotations

import json
import threading
from collections import deque
from pathlib import Path

import pytest

from mlpipe.errors import SettingsError
from mlpipe.executors.base import Workload
from mlpipe.executors.resources import (
    Grant,
    SlotAllocator,
    local_slots,
    parse_gpus,
    take_fitting,
)
from mlpipe.scheduler.service import Engine
from mlpipe.settings import load_settings
from mlpipe.store.entities import TIKey

DAGS = Path(__file__).resolve().parents[1] / "celery" / "dags"


def test_gpus_are_handed_out_by_index_and_come_back() -> None:
    slots = SlotAllocator([0, 1, 2])
    first = slots.try_acquire({"gpu": 2})
    assert first == Grant((0, 1))
    assert first.env() == {"CUDA_VISIBLE_DEVICES": "0,1"}
    assert slots.try_acquire({"gpu": 2}) is None  # one left
    second = slots.try_acquire({"gpu": 1})
    assert second.gpus == (2,)
    slots.release(first)
    assert slots.try_acquire({"gpu": 2}).gpus == (0, 1)
    assert slots.try_acquire({}).env() == {}  # no resources: always fits, no GPU


def test_cpu_and_memory_are_counters_when_declared() -> None:
    slots = SlotAllocator(cpus=4, memory_gb=8)
    a = slots.try_acquire({"cpu": 3, "memory_gb": 2})
    assert slots.try_acquire({"cpu": 2}) is None
    assert slots.try_acquire({"memory_gb": 7}) is None
    b = slots.try_acquire({"cpu": 1, "memory_gb": 6})
    assert b is not None
    slots.release(a)
    assert slots.try_acquire({"cpu": 3}) is not None
    assert SlotAllocator().try_acquire({"cpu": 1000, "memory_gb": 1e6}) is not None


@pytest.mark.parametrize(("request_", "reason"), [
    ({"gpu": 2}, "needs 2 GPU(s) but only 1 are declared here (gpus [0], cpu 2, "
                 "memory_gb unlimited)"),
    ({"cpu": 3}, "needs cpu 3 but only 2 are declared here"),
    ({"gpu": 0.5}, "resources['gpu'] = 0.5 is not a whole number of GPUs"),
    ({"gpu": -1}, "resources['gpu'] = -1 is not a non-negative number"),
    ({"tpu": 1}, "unknown resource(s) ['tpu']; known: ['cpu', 'gpu', 'memory_gb']"),
])
def test_a_request_that_can_never_fit_is_refused_with_the_reason(request_: dict,
                                                                 reason: str) -> None:
    assert SlotAllocator([0], cpus=2).refusal(request_) == reason


def test_acquire_waits_for_a_release() -> None:
    slots = SlotAllocator([0])
    held = slots.try_acquire({"gpu": 1})
    got: list[Grant | None] = []
    waiter = threading.Thread(target=lambda: got.append(slots.acquire({"gpu": 1})))
    waiter.start()
    assert slots.acquire({"gpu": 1}, timeout=0.05) is None
    slots.release(held)
    waiter.join(timeout=10)
    assert got == [Grant((0,))]


def test_take_fitting_skips_what_must_wait_and_keeps_its_place() -> None:
    slots = SlotAllocator([0])
    key = TIKey("d", "r", "t")
    gpu_a, gpu_b, cpu = (Workload(key, resources={"gpu": 1}, attempt=1),
                         Workload(key, resources={"gpu": 1}, attempt=2), Workload(key, attempt=3))
    pending = deque([gpu_a, gpu_b, cpu])
    assert take_fitting(pending, slots)[0] is gpu_a
    assert take_fitting(pending, slots)[0] is cpu  # gpu_b waits for the GPU
    assert list(pending) == [gpu_b]
    assert take_fitting(pending, slots) is None


@pytest.mark.parametrize(("value", "expected"), [("0,1", [0, 1]), ("", []), ("none", []),
                                                 (" 3 ", [3])])
def test_parse_gpus(value: str, expected: list[int]) -> None:
    assert parse_gpus(value) == expected


def test_a_bad_mlpipe_gpus_names_the_setting() -> None:
    with pytest.raises(SettingsError, match="setting MLPIPE_GPUS: GPU index 'a' is not"):
        local_slots("0,a")
    assert local_slots("0,1").gpus == [0, 1]


@pytest.fixture
def engine(monkeypatch: pytest.MonkeyPatch) -> Engine:
    monkeypatch.setenv("MLPIPE_GPUS", "0")
    engine = Engine.from_settings(load_settings(executor="local", parallelism=2,
                                                dags_folder=DAGS))
    yield engine
    engine.store.dispose()


@pytest.mark.timeout(120)
def test_the_local_executor_gives_each_gpu_try_its_gpu_and_never_two_at_once(
        engine: Engine) -> None:
    dag = engine.get_dag("celery_queues")
    run_id = engine.trigger(dag).run_id
    assert engine.run(dag, run_id).state.value == "success"
    ran = {t: json.loads(engine.store.get_xcoms("celery_queues", run_id, t,
                                                "return_value")[-1])
           for t in ("prepare", "train_0", "train_1")}
    assert ran["prepare"]["cuda"] is None
    assert ran["train_0"]["cuda"] == ran["train_1"]["cuda"] == "0"
    a, b = sorted((ran["train_0"], ran["train_1"]), key=lambda r: r["start"])
    assert a["end"] <= b["start"]


@pytest.mark.timeout(120)
def test_the_local_executor_fails_a_try_that_needs_more_gpus_than_it_has(
        engine: Engine) -> None:
    dag = engine.get_dag("celery_too_big")
    run_id = engine.trigger(dag).run_id
    assert engine.run(dag, run_id).state.value == "failed"  # not waiting for a GPU forever
    record = engine.store.get_ti(TIKey("celery_too_big", run_id, "needs_two_gpus"))
    assert record.error == ("local executor: needs 2 GPU(s) but only 1 are declared here "
                            "(gpus [0], cpu unlimited, memory_gb unlimited) (MLPIPE_GPUS)")
