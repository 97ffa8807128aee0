"""DeployModelOperator: the gate, the alias move, the smoke test against a real
``mlpipe serve`` process, and the rollback when the endpoint does not serve the new version."""

from __future__ import annotations

from typing import Any

import pytest
from model_fixtures import ServeProcess

from mlpipe import DAG
from mlpipe.errors import DagDefinitionError
from mlpipe.operators import DeployGate, DeployModelOperator
from mlpipe.tracking.models import alias_version, register_model, version_tags

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


@pytest.fixture
def store(trained_models: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """The shared tracking store of the trained models, as this test's MLflow store."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", trained_models["tracking_uri"])
    return trained_models


def register(store: dict[str, Any], name: str, which: str) -> str:
    return register_model(store["tracking_uri"], store[which], name, {})


def deploy(store: dict[str, Any], name: str, version: str, **kwargs: Any) -> Any:
    with DAG(f"deploy_{name}") as dag:
        DeployModelOperator(task_id="deploy", model_name=name, version=version,
                            dataset_uri=store["dataset_uri"], **kwargs)
    run = dag.test()
    return run.get_task_instance("deploy")


def test_first_deployment_takes_the_alias_and_a_worse_model_does_not(
        store: dict[str, Any]) -> None:
    uri = store["tracking_uri"]
    good = register(store, "gate_model", "good")
    bad = register(store, "gate_model", "bad")

    ti = deploy(store, "gate_model", f"models:/gate_model/{good}",
                gate={"metric": "accuracy", "threshold": 0.5})
    assert ti.state == "success", ti.log
    result = ti.xcom_pull()
    assert result["version"] == good and result["previous_version"] is None
    assert result["challenger"] > 0.5 and result["champion"] is None
    assert alias_version(uri, "gate_model", "production") == good

    worse = deploy(store, "gate_model", bad, gate={"threshold": 0.0})
    assert worse.state == "skipped"
    assert "does not beat version" in worse.log and "left at " + good in worse.log
    assert alias_version(uri, "gate_model", "production") == good
    assert version_tags(uri, "gate_model", bad)["mlpipe.gate.production"].startswith(
        "rejected: test accuracy")


def test_below_threshold_is_skipped_and_leaves_no_alias(store: dict[str, Any]) -> None:
    version = register(store, "threshold_model", "good")
    ti = deploy(store, "threshold_model", version, gate=DeployGate(threshold=1.0))
    assert ti.state == "skipped"
    assert "below the threshold 1.0000" in ti.log
    assert alias_version(store["tracking_uri"], "threshold_model", "production") is None


def test_the_same_version_again_is_skipped(store: dict[str, Any]) -> None:
    version = register(store, "again_model", "good")
    assert deploy(store, "again_model", version, gate=None).state == "success"
    again = deploy(store, "again_model", version, gate=None)
    assert again.state == "skipped"
    assert "already holds alias 'production'" in again.log


def test_deploy_reloads_the_endpoint_and_smoke_tests_it(
        store: dict[str, Any], serve_process: ServeProcess) -> None:
    name = "served_model"
    first = register(store, name, "bad")
    deploy(store, name, first, gate=None)
    server = serve_process(f"models:/{name}@production", store["tracking_uri"])
    assert server.get("/health")["version"] == first

    second = register(store, name, "good")
    ti = deploy(store, name, second, serving_url=server.url, smoke_requests=6)
    assert ti.state == "success", ti.log
    assert "smoke test passed" in ti.log and "6 requests" in ti.log
    assert ti.xcom_pull()["served_version"] == second
    assert server.get("/health")["version"] == second
    assert alias_version(store["tracking_uri"], name, "production") == second


def test_a_failed_smoke_test_moves_the_alias_back(
        store: dict[str, Any], serve_process: ServeProcess) -> None:
    name = "rollback_model"
    first = register(store, name, "bad")
    deploy(store, name, first, gate=None)
    # An endpoint pinned to version 1 keeps serving it after a reload: the smoke test sees
    # the wrong version, as it would with a stale or misconfigured server.
    server = serve_process(f"models:/{name}/{first}", store["tracking_uri"])
    second = register(store, name, "good")
    ti = deploy(store, name, second, serving_url=server.url)
    assert ti.state == "failed"
    assert f"serves version {first} after reload, expected {second}" in ti.error
    assert f"alias 'production' moved back to {first}" in ti.error
    assert alias_version(store["tracking_uri"], name, "production") == first
    assert version_tags(store["tracking_uri"], name, second)[
        "mlpipe.gate.production"].startswith("rolled back")


def test_an_unreachable_endpoint_rolls_back_to_no_alias(store: dict[str, Any]) -> None:
    name = "unreachable_model"
    version = register(store, name, "good")
    ti = deploy(store, name, version, gate=None, serving_url="http://127.0.0.1:9")
    assert ti.state == "failed"
    assert "is unreachable" in ti.error and "moved back to nothing (removed)" in ti.error
    assert alias_version(store["tracking_uri"], name, "production") is None


def test_bad_arguments_fail_at_definition_with_the_field() -> None:
    with pytest.raises(DagDefinitionError, match=r"gate\.threshold: 2 is not a number"):
        DeployModelOperator(task_id="d", model_name="m", version="1", dataset_uri="file:///x",
                            gate={"threshold": 2})
    with pytest.raises(DagDefinitionError, match=r"unknown key\(s\) gate.metrc"):
        DeployModelOperator(task_id="d", model_name="m", version="1", dataset_uri="file:///x",
                            gate={"metrc": "accuracy"})
    with pytest.raises(DagDefinitionError, match="needs dataset_uri"):
        DeployModelOperator(task_id="d", model_name="m", version="1")


def test_an_unknown_version_fails_naming_it(store: dict[str, Any]) -> None:
    register(store, "known_model", "good")
    ti = deploy(store, "known_model", "models:/known_model/42", gate=None)
    assert ti.state == "failed"
    assert "model 'known_model' version '42'" in ti.error
