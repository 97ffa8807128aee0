"""The scheduler logs each DAG file's import error once and survives a file that exits."""

from __future__ import annotations

from pathlib import Path

import pytest
from scheduler_procs import SchedulerLauncher, stop, wait_until

BAD = {
    "exits.py": "import os\nos._exit(0)\n",
    "sleeps.py": "import time\ntime.sleep(600)\n",
    "raises.py": "raise RuntimeError('broken on purpose')\n",
}
GOOD = """
from mlpipe import DAG
from mlpipe.operators import EmptyOperator

with DAG("good") as dag:
    EmptyOperator(task_id="t")
"""


@pytest.mark.slow
def test_the_scheduler_logs_import_errors_once_and_survives_a_file_that_exits(
        tmp_path: Path, isolated_env: Path) -> None:
    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / "good.py").write_text(GOOD)
    for name, body in BAD.items():
        (dags / name).write_text(body)
    launcher = SchedulerLauncher(tmp_path, MLPIPE_DAGS_FOLDER=str(dags),
                                 MLPIPE_DAG_PARSE_TIMEOUT_S="1")
    try:
        proc = launcher.start()
        launcher.wait_started(proc)
        wait_until(lambda: all(f"import error in DAG file {dags / n}" in proc.stderr()
                               for n in BAD),
                   timeout=60, what="every import error in the scheduler's log")
        # a later change of the folder is logged; the earlier errors are not logged again
        (dags / "late.py").write_text("raise ValueError('late')\n")
        wait_until(lambda: f"import error in DAG file {dags / 'late.py'}" in proc.stderr(),
                   timeout=60, what="the new file's import error")
        assert proc.alive(), proc.describe()
        log = proc.stderr()
        assert "exits.py: importing the file ended its process (exit code 0)" in log
        for name in BAD:
            assert log.count(f"import error in DAG file {dags / name}") == 1, log
        assert stop(proc) == 0
    finally:
        launcher.cleanup()
