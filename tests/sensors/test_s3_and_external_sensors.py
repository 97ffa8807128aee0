"""S3KeySensor against a real S3 endpoint (moto's server on loopback), and
ExternalTaskSensor against runs of another DAG in the same metadata database."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from hooks.conftest import aws_conn, aws_secret, bucket, s3_endpoint  # noqa: F401 (fixtures)

from mlpipe import DAG
from mlpipe.hooks import S3Hook
from mlpipe.operators import PythonOperator
from mlpipe.scheduler.service import Engine
from mlpipe.sensors import S3KeySensor


def test_s3_key_sensor_waits_for_an_exact_key_and_a_wildcard(aws_conn: str,  # noqa: F811
                                                            bucket: str) -> None:  # noqa: F811
    S3Hook(aws_conn).get_conn().put_object(Bucket=bucket, Key="images/cat/1.jpg", Body=b"x")
    with DAG("s3_wait", start_date=datetime(2026, 1, 1, tzinfo=UTC)) as dag:
        S3KeySensor("exact", bucket_key=f"s3://{bucket}/images/_SUCCESS", aws_conn_id=aws_conn,
                    poke_interval=0.2, timeout=20, mode="reschedule")
        S3KeySensor("pattern", bucket_key="images/*/[0-9].jpg", bucket_name=bucket,
                    wildcard_match=True, aws_conn_id=aws_conn, poke_interval=0.2, timeout=20)
        land = PythonOperator("land", python_callable=lambda: S3Hook(aws_conn).get_conn()
                              .put_object(Bucket=bucket, Key="images/_SUCCESS", Body=b"")
                              and None)
        land >> S3KeySensor("both", bucket_key=[f"s3://{bucket}/images/cat/1.jpg",
                                                f"s3://{bucket}/images/_SUCCESS"],
                            aws_conn_id=aws_conn, poke_interval=0.2, timeout=20)
        S3KeySensor("absent", bucket_key="images/dog/*.png", bucket_name=bucket,
                    wildcard_match=True, aws_conn_id=aws_conn, poke_interval=0.1, timeout=0.4,
                    soft_fail=True)
    run = dag.test()  # "exact" pokes first, then "land" puts the key it waits for

    states = {t.task_id: t.state for t in run.task_instances}
    assert states == {"exact": "success", "pattern": "success", "both": "success",
                      "absent": "skipped", "land": "success"}
    exact = run.get_task_instance("exact")
    assert exact.try_number == 1 and "UP_FOR_RESCHEDULE" in exact.log
    assert f"s3://{bucket}/images/_SUCCESS does not exist yet" in exact.log


def test_s3_key_sensor_fails_in_one_line_on_an_unreachable_endpoint_or_a_bad_rendered_key(
        aws_conn: str, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    monkeypatch.setenv("MLPIPE_CONN_AWS_DOWN", "s3://AKIADOWN:topsecret-down@/?endpoint_url="
                       "http://127.0.0.1:9&region_name=us-east-1&max_attempts=1"
                       "&connect_timeout=1")
    with DAG("s3_bad", start_date=datetime(2026, 1, 1, tzinfo=UTC),
             params={"key": "plain-key"}) as dag:
        S3KeySensor("no_bucket", bucket_key="s3://some-bucket/k", aws_conn_id="aws_down",
                    poke_interval=0.1, timeout=5)
        S3KeySensor("rendered", bucket_key="{{ params.key }}", aws_conn_id=aws_conn,
                    poke_interval=0.1, timeout=5)
    run = dag.test()
    no_bucket, rendered = run.get_task_instance("no_bucket"), run.get_task_instance("rendered")
    assert no_bucket.state == "failed" and rendered.state == "failed"
    assert "ConnectionFailedError: connection 'aws_down' (http://127.0.0.1:9" in no_bucket.log
    assert "topsecret-down" not in no_bucket.log
    assert ("TaskError: sensor 'rendered': bucket_key 'plain-key' is not an s3://BUCKET/KEY "
            "URL") in rendered.log


@pytest.mark.timeout(60)
def test_external_task_sensor_waits_for_the_other_dags_task_at_the_same_date(
        make_engine: Callable[..., Engine]) -> None:
    engine = make_engine("external", executor="sequential")
    when = datetime(2026, 2, 1, tzinfo=UTC)
    waiter = engine.trigger(engine.get_dag("waiter"), logical_date=when)
    doomed = engine.trigger(engine.get_dag("doomed"), logical_date=when)
    producer = engine.trigger(engine.get_dag("producer"), logical_date=when)

    # the waiter pokes (and is rescheduled) until the producer's run has run
    done = threading.Event()
    result: dict[str, str] = {}

    def drive_waiter() -> None:
        result["waiter"] = engine.run(engine.get_dag("waiter"), waiter.run_id).state.value
        done.set()

    thread = threading.Thread(target=drive_waiter)
    thread.start()
    try:
        assert not done.wait(1.0)  # nothing to wait for yet: it keeps waiting
        engine.run(engine.get_dag("producer"), producer.run_id)
        thread.join(30)
    finally:
        thread.join(30)
    assert result["waiter"] == "success"
    waits = [t for t in engine.store.list_tis("waiter", waiter.run_id)]
    assert waits[0].try_number == 1

    failed = engine.run(engine.get_dag("doomed"), doomed.run_id)
    assert failed.state == "failed"
    log = failed.get_task_instance("wait_break").log
    assert "TaskError: producer.break_ at 2026-02-01T00:00:00+00:00 is failed (failed_states)" \
        in log
