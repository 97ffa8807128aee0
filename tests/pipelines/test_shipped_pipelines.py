"""The shipped pipelines parse, have the documented shape, and their config is checked."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from mlpipe.core.timetables import due_intervals
from mlpipe.operators import DeployModelOperator, TorchTrainOperator
from mlpipe.recipes.image_classifier import PipelineConfigError, load_pipeline_config
from mlpipe.runtime.dagbag import DagBag, load_dagbag

REPO = Path(__file__).resolve().parents[2]
CHAIN = ["download", "preprocess", "train", "evaluate", "upload", "register", "deploy"]


@pytest.fixture(scope="module")
def bag() -> DagBag:
    bag = load_dagbag(REPO / "pipelines")
    assert bag.import_errors == {}
    return bag


@pytest.mark.parametrize("dag_id", ["image_classifier", "nightly_retrain",
                                    "retrain_on_new_data"])
def test_both_pipelines_run_the_whole_ml_path(bag: DagBag, dag_id: str) -> None:
    dag = bag.get_dag(dag_id)
    assert [t.task_id for t in dag.topological_sort()] == CHAIN
    deploy = dag.get_task("deploy")
    assert isinstance(deploy, DeployModelOperator)
    assert deploy.alias == "production"
    assert deploy.gate["beat_current"] is True  # only a better model is deployed
    assert set(dag.params) >= {"source", "model_name", "epochs", "serving_url",
                               "gate_threshold"}


def test_nightly_retrain_runs_at_two_without_catchup_with_backoff_and_a_training_pool(
        bag: DagBag) -> None:
    dag = bag.get_dag("nightly_retrain")
    assert dag.schedule == "0 2 * * *" and dag.catchup is False
    train = dag.get_task("train")
    assert isinstance(train, TorchTrainOperator) and train.pool == "training"
    assert train.retries == 2 and train.retry_exponential_backoff is True
    # Catchup off: after a week away only last night's interval is due, not seven.
    now = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)
    due = due_intervals(dag.timetable, start_date=dag.start_date, end_date=None,
                        catchup=dag.catchup, now=now, after=now - timedelta(days=7))
    assert [(i.start, i.end) for i in due] == [
        (datetime(2026, 3, 9, 2, tzinfo=UTC), datetime(2026, 3, 10, 2, tzinfo=UTC))]


def test_a_bad_config_names_the_file_and_every_bad_field(tmp_path: Path) -> None:
    data = yaml.safe_load((REPO / "configs" / "image_classifier.yaml").read_text())
    data["gate"]["threshold"] = 1.5
    data["source"] = "http://not-s3/"
    data["epochz"] = 3
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(PipelineConfigError) as caught:
        load_pipeline_config(path)
    message = str(caught.value)
    assert message.startswith(str(path))
    assert "gate.threshold: Input should be less than or equal to 1" in message
    assert "source: String should match pattern" in message
    assert "epochz: Extra inputs are not permitted" in message
    assert "\n" not in message


def test_a_missing_config_file_is_one_clear_line(tmp_path: Path) -> None:
    with pytest.raises(PipelineConfigError, match="cannot read the config"):
        load_pipeline_config(tmp_path / "nope.yaml")


def test_retrain_on_new_data_is_scheduled_on_the_training_images(bag: DagBag) -> None:
    from mlpipe import Dataset, DatasetAll
    from mlpipe.core.timetables import DatasetTimetable

    dag = bag.get_dag("retrain_on_new_data")
    config = load_pipeline_config(REPO / "configs" / "image_classifier.yaml")
    assert isinstance(dag.timetable, DatasetTimetable)
    assert dag.timetable.condition == DatasetAll(Dataset(config.source))
    [images] = dag.timetable.condition.iter_datasets()
    assert images.aws_conn_id == config.aws_conn_id
    assert dag.max_active_runs == 1 and dag.get_task("download").incremental is True


def test_retrain_on_new_data_refuses_uploads_under_the_watched_prefix(tmp_path: Path) -> None:
    import shutil

    (tmp_path / "pipelines").mkdir()
    (tmp_path / "configs").mkdir()
    shutil.copy(REPO / "pipelines" / "retrain_on_new_data.py", tmp_path / "pipelines")
    data = yaml.safe_load((REPO / "configs" / "image_classifier.yaml").read_text())
    data["upload_to"] = data["source"] + "processed/"
    (tmp_path / "configs" / "image_classifier.yaml").write_text(yaml.safe_dump(data))
    bag = load_dagbag(tmp_path / "pipelines")
    [error] = bag.import_errors.values()
    assert "is inside source" in error and "trigger retraining forever" in error
