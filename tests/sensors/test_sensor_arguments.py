"""Bad sensor, SLA and deadline arguments: one clear line, at DAG definition time."""

from __future__ import annotations

from datetime import timedelta

import pytest

from mlpipe import DAG
from mlpipe.errors import DagDefinitionError
from mlpipe.operators import EmptyOperator
from mlpipe.sensors import (
    BaseSensorOperator,
    ExternalTaskSensor,
    FileSensor,
    PokeReturnValue,
    PythonSensor,
    S3KeySensor,
    TimeDeltaSensor,
)


def _true() -> bool:
    return True


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"poke_interval": -1}, r"sensor 's': poke_interval must be > 0 seconds, got -1$"),
    ({"poke_interval": 0}, r"poke_interval must be > 0 seconds, got 0"),
    ({"poke_interval": "5"}, r"poke_interval must be seconds or a timedelta, got '5'"),
    ({"poke_interval": True}, r"poke_interval must be seconds or a timedelta, got True"),
    ({"poke_interval": float("nan")}, r"poke_interval must be > 0 seconds"),
    ({"timeout": timedelta(seconds=-1)}, r"timeout must be >= 0 seconds"),
    ({"mode": "defer"}, r"mode must be one of \['poke', 'reschedule'\], got 'defer'"),
    ({"max_wait": 0}, r"max_wait must be > 0 seconds"),
])
def test_bad_sensor_arguments_are_one_clear_line(kwargs: dict[str, object],
                                                 message: str) -> None:
    with pytest.raises(DagDefinitionError, match=message) as info:
        PythonSensor("s", python_callable=_true, **kwargs)
    assert "\n" not in str(info.value)


def test_a_sensor_must_implement_poke() -> None:
    with DAG("d"):
        sensor = BaseSensorOperator("s")
    with pytest.raises(NotImplementedError, match="must implement poke"):
        sensor.poke({})


@pytest.mark.parametrize(("build", "message"), [
    (lambda: S3KeySensor("s", bucket_key="no/bucket.txt"),
     r"bucket_key 'no/bucket.txt' is not an s3://BUCKET/KEY URL; pass a full URL or set "
     r"bucket_name"),
    (lambda: S3KeySensor("s", bucket_key="s3://bucket/"), r"is not an s3://BUCKET/KEY URL"),
    (lambda: S3KeySensor("s", bucket_key="s3://b/k", bucket_name="b"),
     r"is a full s3:// URL; pass either the URL or bucket_name"),
    (lambda: S3KeySensor("s", bucket_key=[]), r"bucket_key must be a non-empty key"),
    (lambda: FileSensor("s", filepath="  "), r"filepath must not be empty"),
    (lambda: TimeDeltaSensor("s", delta=5), r"delta must be a timedelta, got 5"),
    (lambda: PythonSensor("s", python_callable="f"), r"python_callable must be callable"),
    (lambda: ExternalTaskSensor("s", external_dag_id="a", external_task_id="t",
                                allowed_states=["succes"]),
     r"allowed_states has unknown states \['succes'\]; known: \["),
    (lambda: ExternalTaskSensor("s", external_dag_id="a", external_task_id="t",
                                allowed_states=["success"], failed_states=["success"]),
     r"\['success'\] are in both allowed_states and failed_states"),
    (lambda: ExternalTaskSensor("s", external_dag_id="a", allowed_states=["skipped"]),
     r"allowed_states has unknown states \['skipped'\]; known: \['failed', 'queued'"),
    (lambda: ExternalTaskSensor("s", external_dag_id="a", execution_delta=timedelta(1),
                                execution_date_fn=lambda d: d),
     r"pass execution_delta or execution_date_fn, not both"),
    (lambda: ExternalTaskSensor("s", external_dag_id=""), r"external_dag_id must be a DAG id"),
    (lambda: EmptyOperator("t", sla=timedelta(0)), r"task 't': sla must be > 0"),
    (lambda: EmptyOperator("t", sla="1h"), r"task 't': sla must be a timedelta or seconds"),
    (lambda: DAG("d", deadline=timedelta(minutes=-5)),
     r"DAG 'd': deadline must be a timedelta > 0"),
])
def test_bad_arguments_of_each_sensor_name_the_value(build: object, message: str) -> None:
    with pytest.raises(DagDefinitionError, match=message):
        build()  # type: ignore[operator]


def test_templated_s3_keys_are_checked_when_they_render_not_at_definition() -> None:
    sensor = S3KeySensor("s", bucket_key="{{ params.key }}")
    assert sensor.bucket_key == "{{ params.key }}"


def test_exponential_backoff_doubles_the_interval_up_to_max_wait() -> None:
    sensor = PythonSensor("s", python_callable=_true, poke_interval=2,
                          exponential_backoff=True, max_wait=timedelta(seconds=15))
    assert [sensor.next_interval(n).total_seconds() for n in range(1, 7)] == \
        [2, 4, 8, 15, 15, 15]
    plain = PythonSensor("p", python_callable=_true, poke_interval=3)
    assert {plain.next_interval(n).total_seconds() for n in (1, 5, 50)} == {3}
    huge = PythonSensor("h", python_callable=_true, poke_interval=60, exponential_backoff=True)
    assert huge.next_interval(10_000) == timedelta(hours=1)  # the default cap, no overflow


def test_poke_return_value_is_truthy_only_when_done() -> None:
    assert PokeReturnValue(True, {"k": 1}) and not PokeReturnValue(False)
    assert PokeReturnValue(True, 3).xcom_value == 3
