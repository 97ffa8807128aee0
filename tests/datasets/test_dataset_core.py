"""``Dataset``/``Asset``, conditions, ``outlets=`` and ``schedule=[...]``: the pure core."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from mlpipe import DAG, Asset, Dataset, DatasetAll, DatasetAny, task
from mlpipe.core.timetables import CronTimetable, DatasetTimetable, due_intervals
from mlpipe.errors import InvalidDatasetError
from mlpipe.operators import EmptyOperator

IMAGES = Dataset("s3://bucket/images/")
LABELS = Dataset("s3://bucket/labels/")
TABLE = Dataset("file:///data/table.csv")


def test_asset_is_dataset_and_equality_is_by_uri() -> None:
    assert Asset is Dataset
    assert Dataset("s3://bucket/images/", extra={"aws_conn_id": "x"}) == IMAGES
    assert len({IMAGES, Dataset("s3://bucket/images/"), LABELS}) == 2
    assert Dataset("s3://b/p/", extra={"aws_conn_id": "minio"}).aws_conn_id == "minio"
    assert IMAGES.aws_conn_id == "aws_default"


@pytest.mark.parametrize(("uri", "problem"), [
    ("images/", "needs a lower-case scheme"),
    ("S3://bucket/x", "needs a lower-case scheme"),
    ("s3://", "names nothing after its scheme"),
    ("s3:///key", "must name a bucket"),
    ("s3://bucket/my images/", "whitespace or control characters"),
    ("s3://bucket/a\nb", "whitespace or control characters"),
    ("s3://bucket/" + "k" * 1500, "at most 1500 are allowed"),
    (42, "must be a string, got int"),
])
def test_a_bad_uri_is_one_line_naming_it(uri: object, problem: str) -> None:
    with pytest.raises(InvalidDatasetError, match=problem) as caught:
        Dataset(uri)  # type: ignore[arg-type]
    assert "\n" not in str(caught.value)
    assert str(caught.value).startswith("dataset ")


@pytest.mark.parametrize(("extra", "problem"), [
    ({"aws_conn_id": 3}, "must be a connection id"),
    ({1: "x"}, "string keys"),
    ({"blob": object()}, "extra must be JSON"),
    ({"big": "x" * 5000}, "at most 4096"),
])
def test_a_bad_extra_is_refused(extra: dict[object, object], problem: str) -> None:
    with pytest.raises(InvalidDatasetError, match=problem):
        Dataset("s3://bucket/x/", extra=extra)  # type: ignore[arg-type]


def test_any_and_all_and_the_operators_evaluate_as_airflow() -> None:
    either = IMAGES | LABELS
    both = IMAGES & LABELS
    assert isinstance(either, DatasetAny) and isinstance(both, DatasetAll)
    assert either.evaluate({IMAGES.uri}) and not either.evaluate({TABLE.uri})
    assert not both.evaluate({IMAGES.uri}) and both.evaluate({IMAGES.uri, LABELS.uri})
    nested = (IMAGES & LABELS) | TABLE
    assert nested.evaluate({TABLE.uri}) and not nested.evaluate({LABELS.uri})
    assert nested.uris == [IMAGES.uri, LABELS.uri, TABLE.uri]
    with pytest.raises(InvalidDatasetError, match="wrap a URI in Dataset"):
        IMAGES | "s3://bucket/other/"  # type: ignore[operator]
    with pytest.raises(InvalidDatasetError, match="needs at least one dataset"):
        DatasetAny()


def test_a_list_schedule_is_a_dataset_timetable_that_the_clock_never_triggers() -> None:
    with DAG("consumer", schedule=[IMAGES, LABELS],
             start_date=datetime(2026, 1, 1, tzinfo=UTC)) as dag:
        EmptyOperator(task_id="t")
    timetable = dag.timetable
    assert isinstance(timetable, DatasetTimetable)
    assert timetable.uris == [IMAGES.uri, LABELS.uri]
    assert timetable.condition == DatasetAll(IMAGES, LABELS)
    assert timetable.description == "datasets: s3://bucket/images/ and s3://bucket/labels/"
    assert due_intervals(timetable, start_date=dag.start_date, end_date=None, catchup=True,
                         now=datetime(2027, 1, 1, tzinfo=UTC), after=None) == []
    with DAG("either", schedule=IMAGES | TABLE) as other:
        pass
    assert isinstance(other.timetable, DatasetTimetable)
    with DAG("cron", schedule="@daily") as cron:  # other schedules are unchanged
        pass
    assert isinstance(cron.timetable, CronTimetable)


def test_an_empty_list_schedule_or_a_list_of_strings_is_refused() -> None:
    with pytest.raises(InvalidDatasetError, match="names no dataset"):
        DAG("empty", schedule=[])
    with pytest.raises(InvalidDatasetError, match="takes Dataset objects"):
        DAG("strings", schedule=["s3://bucket/x/"])


def test_outlets_on_operators_and_task_decorators() -> None:
    with DAG("producer") as dag:
        EmptyOperator(task_id="one", outlets=[IMAGES, IMAGES, LABELS])
        EmptyOperator(task_id="single", outlets=TABLE)

        @task(outlets=[TABLE])
        def make() -> int:
            return 1

        make()
    assert dag.get_task("one").outlets == [IMAGES, LABELS]
    assert dag.get_task("single").outlets == [TABLE]
    assert dag.get_task("make").outlets == [TABLE]
    assert EmptyOperator(task_id="none").outlets == []


@pytest.mark.parametrize("outlets", [["s3://bucket/x/"], "s3://bucket/x/", [IMAGES | LABELS]])
def test_outlets_take_only_datasets(outlets: object) -> None:
    with pytest.raises(InvalidDatasetError, match="task 'bad': outlets must"):
        EmptyOperator(task_id="bad", outlets=outlets)  # type: ignore[arg-type]


def test_a_successful_try_records_an_event_per_outlet_and_a_failed_one_none() -> None:
    with DAG("produce_and_fail") as dag:
        @task(outlets=[IMAGES])
        def good() -> int:
            return 1

        @task(outlets=[LABELS])
        def bad() -> None:
            raise RuntimeError("boom")

        good()
        bad()
    run = dag.test()
    assert run.get_task_instance("good").state == "success"
    assert run.get_task_instance("bad").state == "failed"
    assert f"dataset events recorded: {IMAGES.uri}" in run.get_task_instance("good").log
    assert "dataset events recorded" not in run.get_task_instance("bad").log
