"""``MLPIPE_REMOTE_LOG_URI``: every executor's tries copy their log there; ``tasks logs``
reads the copy when the local file is gone, and says where it looked when neither exists."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mlpipe.cli.main import app
from mlpipe.runtime.remote_logs import read_remote_log, remote_log_uri, shipping_log
from mlpipe.scheduler.service import Engine
from mlpipe.settings import load_settings
from mlpipe.store.entities import TIKey

DAGS = Path(__file__).resolve().parents[1] / "celery" / "dags"


def test_the_uri_follows_the_local_layout() -> None:
    key = TIKey("d", "r1", "t", 3)
    assert remote_log_uri("s3://b/logs/", key, 2) == (
        "s3://b/logs/dag_id=d/run_id=r1/task_id=t/map_index=3/attempt=2.log")
    with pytest.raises(ValueError, match="try_number 0 is not a try"):
        remote_log_uri("s3://b/logs", key, 0)


def test_shipping_copies_while_running_and_at_the_end(tmp_path: Path) -> None:
    root = (tmp_path / "remote").as_uri()
    key = TIKey("d", "r1", "t")
    log = tmp_path / "attempt=1.log"
    log.write_text("first line\n")
    with shipping_log(root, key, 1, log, interval=0.05):
        deadline = time.monotonic() + 10
        while read_remote_log(root, key, 1) != "first line\n":  # a partial copy arrived
            assert time.monotonic() < deadline
        with open(log, "a") as fh:
            fh.write("last line\n")
    assert read_remote_log(root, key, 1) == "first line\nlast line\n"
    assert read_remote_log(root, TIKey("d", "r1", "other"), 1) is None


@pytest.mark.timeout(120)
def test_tasks_logs_reads_the_remote_copy_when_the_local_file_is_gone(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    remote = tmp_path / "remote_logs"
    monkeypatch.setenv("MLPIPE_REMOTE_LOG_URI", remote.as_uri())
    monkeypatch.setenv("MLPIPE_DAGS_FOLDER", str(DAGS))
    engine = Engine.from_settings(load_settings(executor="local"))
    dag = engine.get_dag("celery_max_active")
    run_id = engine.trigger(dag).run_id
    assert engine.run(dag, run_id).state.value == "success"
    engine.store.dispose()
    shutil.rmtree(engine.logs_root)

    result = CliRunner().invoke(app, ["tasks", "logs", "celery_max_active", "limited_0", run_id])
    assert result.exit_code == 0, result.output
    assert "Starting try 1 of 1: limited_0" in result.output
    assert remote_log_uri(remote.as_uri(), TIKey("celery_max_active", run_id, "limited_0"), 1) \
        in result.output.replace("\n", "")

    shutil.rmtree(remote)
    result = CliRunner().invoke(app, ["tasks", "logs", "celery_max_active", "limited_0", run_id])
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: the log of try 1 of ")
    assert lines[0].endswith(" nor at " + remote_log_uri(
        remote.as_uri(), TIKey("celery_max_active", run_id, "limited_0"), 1))
