"""The benchmark workloads on Apache Airflow, run with ``.peers/airflow/bin/python``.

TaskFlow ``@task``s in a ``DAG``, run with ``dag.test()``: in-process, no executor, but every
task instance, state change and XCom goes through the metadata DB (SQLite, a fresh copy of
the one ``setup.sh`` migrated), so the chain is already Airflow's persisted path.
"""

from __future__ import annotations

import atexit
import importlib.util
import os
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import PEERS_DIR, Runner, main

HOME = PEERS_DIR / "airflow" / "home"


def _configure() -> None:
    """A private copy of the migrated DB and an empty DAGs folder, before airflow loads."""
    scratch = Path(tempfile.mkdtemp(prefix="db-", dir=PEERS_DIR / "airflow"))
    atexit.register(shutil.rmtree, scratch, ignore_errors=True)
    shutil.copy(HOME / "airflow.db", scratch / "airflow.db")
    (scratch / "dags").mkdir()
    os.environ.update({
        "AIRFLOW_HOME": str(HOME),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{scratch / 'airflow.db'}",
        "AIRFLOW__CORE__DAGS_FOLDER": str(scratch / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "SCARF_ANALYTICS": "false",
        "DO_NOT_TRACK": "1",
    })


_configure()

from airflow.sdk import DAG  # noqa: E402  (after the environment is set)

# dag.test() needs the DAG in a DAG bundle (the DAGs folder), as a real DAG file would be.
DAG_FILE = """
from airflow.sdk import DAG, task

with DAG({dag_id!r}, schedule=None) as dag:
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

    if {shape!r} == "chain":
        value = start()
        for _ in range({size} - 1):
            value = step(value)
    else:
        first = source()
        join([branch.override(task_id=f"b{{i}}")(first, i) for i in range({size})])
"""


def _dag_runner(shape: str, size: int, work: Path, leaf: str) -> Runner:
    dag_id = f"{shape}_{size}_{work.name}"
    path = Path(os.environ["AIRFLOW__CORE__DAGS_FOLDER"]) / f"{dag_id}.py"
    path.write_text(DAG_FILE.format(dag_id=dag_id, shape=shape, size=size))
    spec = importlib.util.spec_from_file_location(dag_id, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    dag: DAG = module.dag

    def run() -> int:
        try:
            result = dag.test()
            assert str(result.state).endswith("success"), result.state
            ti = result.get_task_instance(leaf)
            assert ti is not None, leaf
            value: int = ti.xcom_pull(task_ids=leaf)
            return value
        finally:
            path.unlink()  # keep the next runs' bundle parse to their own file

    return run


def chain(n: int, work: Path) -> Runner:
    return _dag_runner("chain", n, work, "step" if n == 2 else f"step__{n - 2}")


def fanout(m: int, work: Path) -> Runner:
    return _dag_runner("fanout", m, work, "join")


if __name__ == "__main__":
    # dag.test() already stores every instance and XCom in the metadata DB.
    main("airflow", "apache-airflow", chain=chain, fanout=fanout, persisted_chain=chain)
