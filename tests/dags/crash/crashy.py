"""Try 1 of ``slow`` announces itself and hangs (the test kills its driver); try 2 is quick.

``die`` ends its own process with ``os._exit`` (under the sequential executor, that is the
process driving the run).
"""

import os
import time
from datetime import timedelta
from pathlib import Path

from mlpipe import DAG, task

MARK = Path(os.environ.get("CRASH_TEST_DIR", "/nonexistent"))

with DAG("crashy", default_args={"retry_delay": timedelta(seconds=0)}) as crashy:

    @task(retries=1)
    def slow(ti=None) -> int:
        (MARK / f"slow-try-{ti.try_number}").write_text(str(os.getpid()))
        if ti.try_number == 1:
            time.sleep(600)
        return ti.try_number

    @task
    def after(n: int) -> int:
        return n

    after(slow())

with DAG("suicide") as suicide:

    @task
    def die() -> None:
        os._exit(1)

    die()

with DAG("wedge") as wedge:

    @task
    def forever() -> None:
        (MARK / "forever").write_text(str(os.getpid()))
        time.sleep(600)

    @task
    def next_step() -> None:
        pass

    forever() >> next_step()

with DAG("boom") as boom:

    @task
    def explode() -> None:
        raise RuntimeError("boom")

    @task
    def downstream() -> str:
        return "ran"

    explode() >> downstream()

with DAG("writer") as writer:

    @task
    def write(artifact_prefix=None) -> str:
        return artifact_prefix

    write()

with DAG("nap") as nap_dag:

    @task
    def nap() -> None:
        (MARK / "nap").write_text(str(os.getpid()))
        time.sleep(3)

    nap()
