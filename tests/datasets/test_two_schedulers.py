"""Two ``mlpipe scheduler`` processes on one PostgreSQL database, both polling the same
``s3://`` dataset: every change makes exactly one run, and an outlet event one consumer run."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from mlpipe.store.metadata_store import MetadataStore

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scheduler"))
from scheduler_procs import SchedulerLauncher, stop, wait_until

POLL_S = 0.3

DAGS = '''
from mlpipe import DAG, Dataset, task

with DAG("on_upload", schedule=[Dataset("s3://{bucket}/in/")]) as dag:
    @task
    def react(triggering_dataset_events=None):
        return sorted(triggering_dataset_events)
    react()
'''


@pytest.fixture
def launcher(tmp_path: Path, bucket: str, aws_conn_uri: str,
             postgres_databases: Callable[[], str]) -> Iterator[SchedulerLauncher]:
    (tmp_path / "dags").mkdir()
    (tmp_path / "dags" / "on_upload.py").write_text(DAGS.format(bucket=bucket))
    made = SchedulerLauncher(
        tmp_path, MLPIPE_HOME=str(tmp_path / "home"), MLPIPE_DAGS_FOLDER=str(tmp_path / "dags"),
        MLPIPE_DATABASE_URL=postgres_databases(), MLPIPE_EXECUTOR="local",
        MLPIPE_PARALLELISM="2", MLPIPE_DATASET_POLL_S=str(POLL_S),
        MLPIPE_CONN_AWS_DEFAULT=aws_conn_uri)
    yield made
    made.cleanup()


def _listed_after(store: MetadataStore, uri: str, moment: datetime) -> bool:
    from sqlalchemy import select

    from mlpipe.store.repositories.datasets import DATASET

    with store.engine.connect() as conn:
        at = conn.execute(select(DATASET.c.listed_at).where(DATASET.c.uri == uri)
                          ).scalar_one_or_none()
    return at is not None and at > moment


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_two_schedulers_make_one_run_per_change(launcher: SchedulerLauncher, bucket: str,
                                                s3_client: Any) -> None:
    from mlpipe.scheduler.service import Engine
    from mlpipe.settings import load_settings

    uri = f"s3://{bucket}/in/"
    engine = Engine.from_settings(load_settings(
        home=launcher.env["MLPIPE_HOME"], dags_folder=launcher.env["MLPIPE_DAGS_FOLDER"],
        database_url=launcher.env["MLPIPE_DATABASE_URL"]))
    engine.dagbag()  # record the DAG first (see the HA tests)
    store = engine.store
    procs = [launcher.start(), launcher.start()]
    for proc in procs:
        launcher.wait_started(proc)
    wait_until(lambda: _listed_after(store, uri, datetime(2000, 1, 1, tzinfo=UTC)),
               timeout=30, what="the baseline listing")
    for i in range(3):
        s3_client.put_object(Bucket=bucket, Key=f"in/{i}.bin", Body=b"x")

        def run_done(count: int = i + 1) -> bool:
            runs = store.list_runs("on_upload")
            return len(runs) >= count and all(r.state == "success" for r in runs)

        wait_until(run_done, timeout=90, what=f"run {i + 1} of on_upload", interval=0.1)
        # both schedulers list it several more times: still one run for this change
        after = datetime.now(UTC) + timedelta(seconds=3 * POLL_S)
        wait_until(lambda after=after: _listed_after(store, uri, after), timeout=30,
                   what="listings three poll periods later")
        runs = store.list_runs("on_upload")
        assert len(runs) == i + 1, [r.conf for r in runs]
        assert [e["keys_added"] for e in runs[-1].conf["triggering_dataset_events"]] == [
            [f"in/{i}.bin"]]
    assert len(store.dataset_events(uri)) == 3
    for proc in procs:
        assert stop(proc) == 0, proc.describe()
        assert "Traceback" not in proc.stderr(), proc.describe()
    store.dispose()
