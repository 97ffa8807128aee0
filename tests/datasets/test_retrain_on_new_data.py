"""The whole story with a real ``mlpipe scheduler`` process and a real S3 endpoint: images
land -> one ``retrain_on_new_data`` run trains on them; nothing changes -> no run; a
restart between polls neither misses nor repeats a change; an ``outlets`` producer
triggers its consumer once."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlpipe.store.metadata_store import MetadataStore

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scheduler"))
from scheduler_procs import SchedulerLauncher, stop, wait_until

REPO = Path(__file__).resolve().parents[2]
POLL_S = 0.5

PRODUCER = '''
from mlpipe import DAG, Dataset
from mlpipe.operators import EmptyOperator

with DAG("producer", schedule=None) as dag:
    EmptyOperator(task_id="write", outlets=[Dataset("file:///data/features.parquet")])
'''

CONSUMER = '''
from mlpipe import DAG, Dataset, task

with DAG("consumer", schedule=[Dataset("file:///data/features.parquet")]) as dag:
    @task
    def read(triggering_dataset_events=None):
        return sorted(triggering_dataset_events)

    read()
'''


def _png(shade: int) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("L", (8, 8), shade).save(buffer, format="PNG")
    return buffer.getvalue()


def _upload(client: Any, bucket: str, names: list[str]) -> list[str]:
    keys = []
    for i, name in enumerate(names):
        shade = 30 if name.startswith("dark/") else 220
        key = f"images/{name}"
        client.put_object(Bucket=bucket, Key=key, Body=_png(shade + i % 5))
        keys.append(key)
    return sorted(keys)


@pytest.fixture
def workdir(tmp_path: Path, bucket: str) -> Path:
    """A project: the shipped pipeline, its config pointing at the test bucket (a tiny
    model), and a producer and a consumer DAG."""
    (tmp_path / "pipelines").mkdir()
    (tmp_path / "configs").mkdir()
    shutil.copy(REPO / "pipelines" / "retrain_on_new_data.py", tmp_path / "pipelines")
    config = yaml.safe_load((REPO / "configs" / "image_classifier.yaml").read_text())
    config.update(source=f"s3://{bucket}/images/", upload_to=f"s3://{bucket}/datasets/",
                  image_size=[8, 8], val_fraction=0.25, test_fraction=0.25)
    config["gate"]["threshold"] = 0.0
    config["train"].update(epochs=1, batch_size=8)
    (tmp_path / "configs" / "image_classifier.yaml").write_text(yaml.safe_dump(config))
    (tmp_path / "pipelines" / "producer.py").write_text(PRODUCER)
    (tmp_path / "pipelines" / "consumer.py").write_text(CONSUMER)
    return tmp_path


@pytest.fixture
def launcher(workdir: Path, aws_conn_uri: str) -> Iterator[SchedulerLauncher]:
    made = SchedulerLauncher(
        workdir, MLPIPE_HOME=str(workdir / "home"), MLPIPE_DAGS_FOLDER=str(workdir / "pipelines"),
        MLPIPE_EXECUTOR="local", MLPIPE_PARALLELISM="2", MLPIPE_DATASET_POLL_S=str(POLL_S),
        MLPIPE_CONN_AWS_DEFAULT=aws_conn_uri, MLFLOW_DISABLE_TELEMETRY="true",
        GIT_PYTHON_REFRESH="quiet")
    yield made
    made.cleanup()


def _cli(workdir: Path, launcher: SchedulerLauncher, *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "mlpipe", *args], cwd=workdir,
                          env={**__import__("os").environ, **launcher.env},
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def _listed_at(store: MetadataStore, uri: str) -> datetime | None:
    from sqlalchemy import select

    from mlpipe.store.repositories.datasets import DATASET

    with store.engine.connect() as conn:
        return conn.execute(select(DATASET.c.listed_at).where(DATASET.c.uri == uri)
                            ).scalar_one_or_none()


def _listings_after(store: MetadataStore, uri: str, moment: datetime, polls: int) -> None:
    """Wait until the scheduler has listed ``uri`` again ``polls`` poll periods after
    ``moment`` (so "no new run" is checked over real polls, not a guess)."""
    target = moment.timestamp() + polls * POLL_S

    def listed() -> bool:
        at = _listed_at(store, uri)
        return at is not None and at.timestamp() >= target

    wait_until(listed, timeout=30, what=f"{polls} more listings of {uri}")


def _runs(store: MetadataStore, dag_id: str) -> list[Any]:
    return store.list_runs(dag_id)


def _finished(store: MetadataStore, dag_id: str, count: int, proc: Any) -> list[Any]:
    def done() -> list[Any] | None:
        runs = _runs(store, dag_id)
        if any(r.state == "failed" for r in runs):
            tis = {r.run_id: [(t.task_id, t.state, t.error) for t in
                              store.list_tis(dag_id, r.run_id)] for r in runs}
            raise AssertionError(f"a run failed: {tis}\n{proc.describe()}")
        return runs if len(runs) >= count and all(r.state == "success" for r in runs) \
            else None

    return wait_until(done, timeout=240, what=f"{count} successful run(s) of {dag_id}",
                      interval=0.2)


@pytest.mark.slow
@pytest.mark.timeout(480)
def test_new_images_start_one_retrain_and_a_restart_neither_misses_nor_repeats(
        workdir: Path, launcher: SchedulerLauncher, bucket: str, s3_client: Any) -> None:
    uri = f"s3://{bucket}/images/"
    store = MetadataStore.open(f"sqlite:///{workdir / 'home' / 'mlpipe.db'}")
    store.set_pool("training", 1)
    proc = launcher.start()
    launcher.wait_started(proc)
    wait_until(lambda: _listed_at(store, uri) is not None, timeout=30,
               what="the baseline listing")
    # Images land while no scheduler runs (16 PUTs are not atomic: a scheduler polling
    # meanwhile could rightly see two change sets); the restarted one must not miss them.
    assert stop(proc) == 0
    first = _upload(s3_client, bucket, [f"{c}/{i}.png" for c in ("dark", "light")
                                        for i in range(8)])
    proc = launcher.start()
    [run] = _finished(store, "retrain_on_new_data", 1, proc)
    assert run.run_type == "dataset_triggered"
    assert len(run.conf["triggering_dataset_events"]) == 1, run.conf
    [event] = run.conf["triggering_dataset_events"]
    assert event["uri"] == uri
    assert event["keys_added"] == first and event["keys_changed"] == []
    states = {t.task_id: t.state for t in store.list_tis("retrain_on_new_data", run.run_id)}
    assert states == dict.fromkeys(["download", "preprocess", "train", "evaluate", "upload",
                                    "register", "deploy"], "success")

    # Nothing changes: no new run over several real polls (the run's upload went elsewhere).
    _listings_after(store, uri, datetime.now(UTC), polls=4)
    assert len(_runs(store, "retrain_on_new_data")) == 1

    # One more image lands while the scheduler runs: exactly one new run listing it.
    more = _upload(s3_client, bucket, ["dark/new-1.png"])
    runs = _finished(store, "retrain_on_new_data", 2, proc)
    second = runs[-1]
    assert len(second.conf["triggering_dataset_events"]) == 1, second.conf
    [event] = second.conf["triggering_dataset_events"]
    assert event["keys_added"] == more and event["keys_deleted"] == []
    [download] = [t for t in store.list_tis("retrain_on_new_data", second.run_id)
                  if t.task_id == "download"]
    log = (Path(str(download.log_path)) / "attempt=1.log").read_text()
    assert "downloaded 1, skipped 16 (unchanged)" in log  # incremental: only the new image

    # A restart repeats nothing: the new scheduler diffs against the stored listing.
    assert stop(proc) == 0
    proc = launcher.start()
    _listings_after(store, uri, datetime.now(UTC), polls=4)
    assert len(_runs(store, "retrain_on_new_data")) == 2
    assert stop(proc) == 0

    listed = json.loads(_cli(workdir, launcher, "datasets", "list", "-o", "json"))
    row = next(d for d in listed if d["uri"] == uri)
    assert row["consuming_dags"] == ["retrain_on_new_data"] and row["events"] == 2
    store.dispose()


@pytest.mark.slow
def test_a_producer_task_triggers_its_consumer_once(workdir: Path,
                                                    launcher: SchedulerLauncher) -> None:
    (workdir / "pipelines" / "retrain_on_new_data.py").unlink()  # not needed here
    store = MetadataStore.open(f"sqlite:///{workdir / 'home' / 'mlpipe.db'}")
    proc = launcher.start()
    launcher.wait_started(proc)
    wait_until(lambda: any(d.uri == "file:///data/features.parquet"
                           for d in store.list_datasets()), timeout=30,
               what="the references to be recorded")
    _cli(workdir, launcher, "dags", "trigger", "producer")
    [run] = _finished(store, "consumer", 1, proc)
    [event] = run.conf["triggering_dataset_events"]
    assert (event["source_dag_id"], event["source_task_id"]) == ("producer", "write")
    assert json.loads(store.get_xcoms("consumer", run.run_id, "read", "return_value")[-1]) \
        == ["file:///data/features.parquet"]  # the context's triggering_dataset_events
    # no second consumer run for the same event
    wait_until(lambda: all(r.state == "success" for r in _runs(store, "producer")),
               timeout=60, what="the producer run to finish")
    assert len(_runs(store, "consumer")) == 1
    listed = json.loads(_cli(workdir, launcher, "datasets", "list", "-o", "json"))
    assert listed == [{"uri": "file:///data/features.parquet",
                       "last_update": listed[0]["last_update"], "events": 1,
                       "producing_tasks": ["producer.write"], "consuming_dags": ["consumer"]}]
    assert stop(proc) == 0
    store.dispose()
