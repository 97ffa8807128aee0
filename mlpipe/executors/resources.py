"""Resource slots: which GPUs, how many CPUs and how much memory a try holds while it runs.

One ``SlotAllocator`` per process that starts tries (a Celery worker, the local executor).
GPUs are handed out by index (a try with ``resources={"gpu": 2}`` gets two indices and runs
with ``CUDA_VISIBLE_DEVICES`` set to them); ``cpu`` and ``memory_gb`` are counters. A limit
left unset (``None``) is not counted. A request that can never fit (more GPUs than the
allocator has) is refused at once with a line saying so, instead of waiting forever.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from mlpipe.errors import SettingsError

if TYPE_CHECKING:
    from mlpipe.executors.base import Workload

__all__ = ["Grant", "SlotAllocator", "local_slots", "parse_gpus", "take_fitting",
           "visible_gpus"]

#: the resource names a task's ``resources=`` may use
KNOWN_RESOURCES = ("cpu", "gpu", "memory_gb")


@dataclass(frozen=True, slots=True)
class Grant:
    """What one try holds: GPU indices and amounts of the counted resources."""

    gpus: tuple[int, ...] = ()
    cpu: float = 0.0
    memory_gb: float = 0.0

    def env(self) -> dict[str, str]:
        """Variables the try's process runs with (``CUDA_VISIBLE_DEVICES`` for GPU tries)."""
        if not self.gpus:
            return {}
        return {"CUDA_VISIBLE_DEVICES": ",".join(str(i) for i in self.gpus)}


def parse_gpus(value: str | None) -> list[int]:
    """``"0,1"`` -> ``[0, 1]``; ``""``/``"none"`` -> ``[]``; ``ValueError`` names a bad part."""
    if value is None or value.strip().lower() in ("", "none"):
        return []
    indices: list[int] = []
    for part in value.split(","):
        part = part.strip()
        if not part.isdigit() or len(part) > 4:
            raise ValueError(f"GPU index {part!r} is not a non-negative integer "
                             f"(expected a list such as '0,1')")
        if int(part) in indices:
            raise ValueError(f"GPU index {part} is listed twice")
        indices.append(int(part))
    return indices


def visible_gpus() -> list[int]:
    """The GPUs this machine shows: ``CUDA_VISIBLE_DEVICES`` if set, else NVIDIA's driver
    folder (``/proc/driver/nvidia/gpus``); no CUDA library is loaded to find out."""
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is not None:
        try:
            return parse_gpus(env)
        except ValueError:  # UUIDs or MIG names: count them, index by position
            return list(range(len([p for p in env.split(",") if p.strip()])))
    folder = Path("/proc/driver/nvidia/gpus")
    try:
        return list(range(len(list(folder.iterdir()))))
    except OSError:
        return []


def _amount(resources: Mapping[str, float], name: str) -> float:
    value = resources.get(name, 0) or 0
    if not isinstance(value, int | float) or isinstance(value, bool) or value < 0 \
            or not math.isfinite(value):
        raise ValueError(f"resources[{name!r}] = {value!r} is not a non-negative number")
    return float(value)


class SlotAllocator:
    """Hands out GPUs by index and counts CPUs and memory; thread-safe."""

    def __init__(self, gpus: list[int] | None = None, *, cpus: float | None = None,
                 memory_gb: float | None = None) -> None:
        self.gpus = list(gpus or [])
        self.cpus = cpus
        self.memory_gb = memory_gb
        self._free_gpus = list(self.gpus)
        self._cpu_used = 0.0
        self._mem_used = 0.0
        self._changed = threading.Condition()

    def describe(self) -> str:
        """``gpus [0, 1], cpu 4, memory_gb unlimited``: what this allocator gives out."""
        def amount(value: float | None) -> str:
            return "unlimited" if value is None else f"{value:g}"
        return f"gpus {self.gpus}, cpu {amount(self.cpus)}, memory_gb {amount(self.memory_gb)}"

    def refusal(self, resources: Mapping[str, float]) -> str | None:
        """Why ``resources`` can never be granted here (None: it fits once others end)."""
        unknown = sorted(set(resources) - set(KNOWN_RESOURCES))
        if unknown:
            return (f"unknown resource(s) {unknown}; known: {list(KNOWN_RESOURCES)}")
        try:
            gpu = _amount(resources, "gpu")
            cpu = _amount(resources, "cpu")
            mem = _amount(resources, "memory_gb")
        except ValueError as exc:
            return str(exc)
        if gpu != int(gpu):
            return f"resources['gpu'] = {gpu:g} is not a whole number of GPUs"
        if gpu > len(self.gpus):
            return f"needs {int(gpu)} GPU(s) but only {len(self.gpus)} are declared here " \
                   f"({self.describe()})"
        if self.cpus is not None and cpu > self.cpus:
            return f"needs cpu {cpu:g} but only {self.cpus:g} are declared here"
        if self.memory_gb is not None and mem > self.memory_gb:
            return f"needs memory_gb {mem:g} but only {self.memory_gb:g} are declared here"
        return None

    def try_acquire(self, resources: Mapping[str, float]) -> Grant | None:
        """A grant now, or None if the request must wait (check ``refusal`` first)."""
        gpu = int(_amount(resources, "gpu"))
        cpu = _amount(resources, "cpu")
        mem = _amount(resources, "memory_gb")
        with self._changed:
            if gpu > len(self._free_gpus):
                return None
            if self.cpus is not None and self._cpu_used + cpu > self.cpus + 1e-9:
                return None
            if self.memory_gb is not None and self._mem_used + mem > self.memory_gb + 1e-9:
                return None
            taken = tuple(sorted(self._free_gpus)[:gpu])
            for index in taken:
                self._free_gpus.remove(index)
            self._cpu_used += cpu
            self._mem_used += mem
            return Grant(taken, cpu, mem)

    def acquire(self, resources: Mapping[str, float], *,
                timeout: float | None = None) -> Grant | None:
        """Wait until ``resources`` fit (up to ``timeout`` s); None if they never did."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._changed:
            while True:
                grant = self.try_acquire(resources)
                if grant is not None:
                    return grant
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return None
                self._changed.wait(left)

    def release(self, grant: Grant) -> None:
        with self._changed:
            self._free_gpus.extend(i for i in grant.gpus if i not in self._free_gpus)
            self._cpu_used = max(0.0, self._cpu_used - grant.cpu)
            self._mem_used = max(0.0, self._mem_used - grant.memory_gb)
            self._changed.notify_all()


def first_fitting(pending: Iterable[Workload], slots: SlotAllocator
                  ) -> tuple[int, Grant] | None:
    """The index of the first pending workload whose resources fit now, and its grant.

    A workload that cannot fit yet keeps its place: a later, smaller one may start before it
    (GPU tasks do not hold up CPU tasks), and it starts as soon as its slots are free.
    """
    for index, workload in enumerate(pending):
        grant = slots.try_acquire(workload.resources)
        if grant is not None:
            return index, grant
    return None


def take_fitting(pending: deque[Workload], slots: SlotAllocator
                 ) -> tuple[Workload, Grant] | None:
    """Pop the first pending workload whose resources fit now, with its grant (else None)."""
    found = first_fitting(pending, slots)
    if found is None:
        return None
    index, grant = found
    workload = pending[index]
    del pending[index]
    return workload, grant


def local_slots(gpus: str | None) -> SlotAllocator:
    """The local executor's slots: ``MLPIPE_GPUS`` (``0,1``), else every visible GPU."""
    try:
        indices = parse_gpus(gpus) if gpus is not None else visible_gpus()
    except ValueError as exc:
        raise SettingsError(f"setting MLPIPE_GPUS: {exc}") from None
    return SlotAllocator(indices)
