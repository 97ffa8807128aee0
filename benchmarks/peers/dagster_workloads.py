"""The benchmark workloads on Dagster, run with ``.peers/dagster/bin/python``.

``@op``s composed in a ``@job`` and run with ``execute_in_process()`` (in-process executor).
The chain calls one op repeatedly (Dagster aliases each call), the fan-out uses one op per
branch and fans in through a list input. Chain and fan-out use the default ephemeral
instance (in memory); the persisted chain uses a ``DagsterInstance`` on disk (SQLite run,
event and schedule storage in a scratch folder) and the ``FilesystemIOManager``, so every output is
written to disk and read back by the next op. Telemetry is off.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import PEERS_DIR, Runner, main

os.environ["DAGSTER_HOME"] = str(PEERS_DIR / "dagster" / "home")
os.environ["DAGSTER_DISABLE_TELEMETRY"] = "1"

from dagster import (
    DagsterInstance,
    FilesystemIOManager,
    JobDefinition,
    OpDefinition,
    job,
    op,
)

NO_TELEMETRY = {"telemetry": {"enabled": False}}


@op
def start() -> int:
    return 0


@op
def step(x: int) -> int:
    return x + 1


@op
def source() -> int:
    return 1


@op
def join(values: list[int]) -> int:
    return sum(values)


def make_branch(i: int) -> OpDefinition:
    @op(name=f"b{i}")
    def branch(x: int) -> int:
        return x + i

    return branch


def _runner(graph: JobDefinition, leaf: str, instance: DagsterInstance | None = None
            ) -> Runner:
    def run() -> int:
        if instance is None:
            with DagsterInstance.ephemeral(settings=NO_TELEMETRY) as ephemeral:
                result = graph.execute_in_process(instance=ephemeral)
                value: int = result.output_for_node(leaf)
                return value
        result = graph.execute_in_process(instance=instance)
        assert result.success
        value = result.output_for_node(leaf)
        return value

    return run


def _chain_job(n: int, **kwargs: object) -> tuple[JobDefinition, str]:
    leaf = ""

    @job(name=f"chain_{n}", **kwargs)  # type: ignore[arg-type]
    def chain_job() -> None:
        nonlocal leaf
        value = start()
        for _ in range(n - 1):
            value = step(value)
        leaf = value.node_name

    return chain_job, leaf


def chain(n: int, work: Path) -> Runner:
    return _runner(*_chain_job(n))


def persisted_chain(n: int, work: Path) -> Runner:
    storage = FilesystemIOManager(base_dir=str(work / "storage"))
    graph, leaf = _chain_job(n, resource_defs={"io_manager": storage})
    (work / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    instance = DagsterInstance.from_config(str(work))
    instance.get_runs(limit=1)  # create the SQLite storages before the timed run
    return _runner(graph, leaf, instance)


def fanout(m: int, work: Path) -> Runner:
    branches = [make_branch(i) for i in range(m)]

    @job(name=f"fanout_{m}")
    def fanout_job() -> None:
        first = source()
        join([b(first) for b in branches])

    return _runner(fanout_job, "join")


if __name__ == "__main__":
    main("dagster", "dagster", chain=chain, fanout=fanout, persisted_chain=persisted_chain)
