"""The API on PostgreSQL (a fresh database per test): trigger, run, page, clear, auth."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from api_support import WebServer, start_server

from mlpipe.settings import load_settings

DAGS = Path(__file__).resolve().parents[2] / "dags" / "web_api"


@pytest.fixture
def pg_web(postgres_databases: Callable[[], str], dags_folder: Path,
           isolated_env: Path) -> Iterator[WebServer]:
    shutil.copy(DAGS / "api_demo.py", dags_folder)
    settings = load_settings(dags_folder=dags_folder, database_url=postgres_databases())
    server = start_server(settings)
    yield server
    server.stop()


def test_trigger_page_and_clear_on_postgres(pg_web: WebServer) -> None:
    ctx = pg_web.app.state.ctx
    for i in range(3):
        response = pg_web.call("POST", "/api/v1/dags/api_demo/dagRuns", "op",
                               json={"dag_run_id": f"pg_{i}", "conf": {"fail": i == 2},
                                     "logical_date": f"2024-02-0{i + 1}T00:00:00Z"})
        assert response.status_code == 200, response.text
        ctx.engine.run(ctx.dag("api_demo"), f"pg_{i}")

    page = pg_web.get("/api/v1/dags/api_demo/dagRuns?limit=2&offset=1&order_by=-execution_date")
    dry = pg_web.call("POST", "/api/v1/dags/api_demo/clearTaskInstances", "op", json={})
    failed_tis = pg_web.get("/api/v1/dags/api_demo/dagRuns/pg_2/taskInstances?state=failed")
    dags = pg_web.get("/api/v1/dags", None, auth=("viewer", "viewer-pass-1"))

    assert page.json()["total_entries"] == 3
    assert [r["dag_run_id"] for r in page.json()["dag_runs"]] == ["pg_1", "pg_0"]
    assert sorted((t["dag_run_id"], t["task_id"]) for t in dry.json()["task_instances"]) == [
        ("pg_2", "check"), ("pg_2", "load")]
    assert [t["task_id"] for t in failed_tis.json()["task_instances"]] == ["check"]
    assert dags.json()["dags"][0]["dag_id"] == "api_demo"
    assert pg_web.get("/api/v1/dags", "viewer").status_code == 200
    assert pg_web.call("POST", "/api/v1/dags/api_demo/dagRuns", "viewer", json={}
                       ).status_code == 403


def test_datasets_and_their_events_on_postgres(pg_web: WebServer) -> None:
    from datetime import UTC, datetime, timedelta

    store = pg_web.store
    store.record_dataset_events({"s3://pg/raw/": {}}, source=("api_demo", "extract", "r1", -1))
    start = datetime.now(UTC)
    store.apply_listing("s3://pg/labels/", {}, {"a": ("e1", 1)}, listed_at=start)
    store.apply_listing("s3://pg/labels/", {}, {"a": ("e2", 1)},
                        listed_at=start + timedelta(seconds=1))

    found = pg_web.get("/api/v1/datasets?order_by=-updated_at").json()
    events = pg_web.get("/api/v1/datasets/events?limit=1").json()
    by_task = pg_web.get("/api/v1/datasets/events?source_task_id=extract").json()

    assert [d["uri"] for d in found["datasets"]] == ["s3://pg/labels/", "s3://pg/raw/"]
    assert all(d["created_at"].endswith("+00:00") for d in found["datasets"])
    assert events["total_entries"] == 2 and len(events["dataset_events"]) == 1
    assert events["dataset_events"][0]["extra"]["keys_changed"] == ["a"]
    assert [e["dataset_uri"] for e in by_task["dataset_events"]] == ["s3://pg/raw/"]
