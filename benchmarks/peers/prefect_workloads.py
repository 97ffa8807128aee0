"""The benchmark workloads on Prefect, run with ``.peers/prefect/bin/python``.

``@task``s called from a ``@flow`` with the default task runner (the chain calls them
directly, the fan-out ``.map``s the branch and the join takes the futures). No API URL is
set, so Prefect starts its temporary local server (a subprocess on 127.0.0.1) on a fresh
SQLite DB, with its home, in a scratch folder under ``.peers/prefect``: runs never share
state. Telemetry and analytics are off. The persisted chain turns result persistence on
(``persist_result=True``: every task result is written to local storage).
"""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import PEERS_DIR, Runner, main


def _configure() -> None:
    """Prefect's home, DB and result storage in a scratch folder, before prefect loads."""
    scratch = Path(tempfile.mkdtemp(prefix="run-", dir=PEERS_DIR / "prefect"))
    atexit.register(shutil.rmtree, scratch, ignore_errors=True)
    for name in [n for n in os.environ if n.startswith("PREFECT_")]:
        del os.environ[name]  # nothing from the caller's shell (an API URL, a profile)
    os.environ.update({
        "PREFECT_HOME": str(scratch / "home"),
        "PREFECT_SERVER_DATABASE_CONNECTION_URL":
            f"sqlite+aiosqlite:///{scratch / 'prefect.db'}",
        "PREFECT_LOCAL_STORAGE_PATH": str(scratch / "storage"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
        "PREFECT_UI_ENABLED": "false",
    })


_configure()

from prefect import flow, task  # noqa: E402  (after the environment is set)


@task
def start() -> int:
    return 0


@task
def step(x: int) -> int:
    return x + 1


@task
def source() -> int:
    return 1


@task
def branch(x: int, i: int) -> int:
    return x + i


@task
def join(values: list[int]) -> int:
    return sum(values)


def _chain_flow(n: int, *, persist: bool) -> Runner:
    first = start.with_options(persist_result=persist)
    then = step.with_options(persist_result=persist)

    @flow(name=f"chain-{n}", persist_result=persist)
    def chain_flow() -> int:
        value = first()
        for _ in range(n - 1):
            value = then(value)
        return value

    return chain_flow


def chain(n: int, work: Path) -> Runner:
    return _chain_flow(n, persist=False)


def persisted_chain(n: int, work: Path) -> Runner:
    return _chain_flow(n, persist=True)


def fanout(m: int, work: Path) -> Runner:
    @flow(name=f"fanout-{m}")
    def fanout_flow() -> int:
        first = source()
        return join(branch.map(first, range(m)))

    return fanout_flow


if __name__ == "__main__":
    main("prefect", "prefect", chain=chain, fanout=fanout, persisted_chain=persisted_chain)
