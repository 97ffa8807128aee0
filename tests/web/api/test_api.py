"""The REST API through a real uvicorn server: Airflow 2.10's shapes, paging, trigger, logs,
clear (dry run first), set state, bad input."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from api_support import WebServer

from mlpipe.masking import MASK

DAGS = Path(__file__).resolve().parents[2] / "dags" / "web_api"
DAG_FIELDS = {"dag_id", "dag_display_name", "root_dag_id", "is_paused", "is_active",
              "is_subdag", "last_parsed_time", "last_pickled", "last_expired",
              "scheduler_lock", "pickle_id", "default_view", "fileloc", "file_token",
              "owners", "description", "schedule_interval", "timetable_description", "tags",
              "max_active_tasks", "max_active_runs", "has_task_concurrency_limits",
              "has_import_errors", "next_dagrun", "next_dagrun_data_interval_start",
              "next_dagrun_data_interval_end", "next_dagrun_create_after"}
RUN_FIELDS = {"dag_run_id", "dag_id", "logical_date", "execution_date", "start_date",
              "end_date", "data_interval_start", "data_interval_end",
              "last_scheduling_decision", "run_type", "state", "external_trigger", "conf",
              "note"}
ERROR_FIELDS = {"detail", "status", "title", "type"}


@pytest.fixture(autouse=True)
def api_demo(dags_folder: Path) -> Path:
    return Path(shutil.copy(DAGS / "api_demo.py", dags_folder))


def trigger(web: WebServer, **body: Any) -> dict[str, Any]:
    response = web.call("POST", "/api/v1/dags/api_demo/dagRuns", "op", json=body)
    assert response.status_code == 200, response.text
    return dict(response.json())


def run_to_end(web: WebServer, run_id: str) -> None:
    ctx = web.app.state.ctx
    ctx.engine.run(ctx.dag("api_demo"), run_id)


def states(web: WebServer, run_id: str) -> dict[str, str | None]:
    body = web.get(f"/api/v1/dags/api_demo/dagRuns/{run_id}/taskInstances").json()
    return {t["task_id"]: t["state"] for t in body["task_instances"]}


def test_the_dag_list_and_one_dag_have_airflows_fields(web: WebServer) -> None:
    listing = web.get("/api/v1/dags").json()
    one = web.get("/api/v1/dags/api_demo").json()

    assert listing["total_entries"] == 1
    assert set(listing["dags"][0]) == DAG_FIELDS
    assert one == listing["dags"][0]
    assert one["tags"] == [{"name": "web"}, {"name": "test"}]
    assert one["description"] == "the web API's test DAG"
    assert one["is_paused"] is False and one["is_active"] is True


def test_an_unknown_or_illegal_dag_id_gets_airflows_error_body(web: WebServer) -> None:
    unknown = web.get("/api/v1/dags/api_dem")
    illegal = web.get("/api/v1/dags/bad%20id%3B")
    traversal = web.get("/api/v1/dags/api_demo/dagRuns/..%2F..%2Fetc/taskInstances")

    assert unknown.status_code == 404
    assert set(unknown.json()) == ERROR_FIELDS
    assert "did you mean 'api_demo'" in unknown.json()["detail"]
    assert illegal.status_code == 400 and "dag_id" in illegal.json()["detail"]
    assert traversal.status_code in (400, 404)
    assert "etc" not in traversal.text or traversal.status_code == 400


def test_pausing_takes_an_update_mask_and_an_op(web: WebServer) -> None:
    by_viewer = web.call("PATCH", "/api/v1/dags/api_demo", "viewer", json={"is_paused": True})
    wrong_mask = web.call("PATCH", "/api/v1/dags/api_demo?update_mask=description", "op",
                          json={"is_paused": True})
    extra_field = web.call("PATCH", "/api/v1/dags/api_demo", "op",
                           json={"is_paused": True, "owners": ["x"]})
    paused = web.call("PATCH", "/api/v1/dags/api_demo?update_mask=is_paused", "op",
                      json={"is_paused": True})

    assert by_viewer.status_code == 403
    assert wrong_mask.status_code == 400 and "is_paused" in wrong_mask.json()["detail"]
    assert extra_field.status_code == 400
    assert paused.status_code == 200 and paused.json()["is_paused"] is True
    assert web.get("/api/v1/dags?paused=true").json()["total_entries"] == 1
    assert web.store.get_dag("api_demo").is_paused


def test_a_triggered_run_with_conf_runs_and_lists_its_task_instances(web: WebServer) -> None:
    run = trigger(web, conf={"rows": 5}, dag_run_id="api_run_1")
    run_to_end(web, "api_run_1")

    got = web.get("/api/v1/dags/api_demo/dagRuns/api_run_1").json()
    tis = web.get("/api/v1/dags/api_demo/dagRuns/api_run_1/taskInstances").json()
    one = web.get("/api/v1/dags/api_demo/dagRuns/api_run_1/taskInstances/check").json()
    assert set(run) == RUN_FIELDS and run["state"] == "queued" and run["conf"] == {"rows": 5}
    assert got["state"] == "success" and got["external_trigger"] is True
    assert tis["total_entries"] == 3
    assert [t["task_id"] for t in tis["task_instances"]] == ["check", "extract", "load"]
    assert one["state"] == "success" and one["try_number"] == 1 and one["pool"] == \
        "default_pool"


def test_bad_triggers_are_refused_with_the_reason(web: WebServer) -> None:
    trigger(web, dag_run_id="taken")
    bad_param = web.call("POST", "/api/v1/dags/api_demo/dagRuns", "op",
                         json={"conf": {"rows": 0}})
    taken = web.call("POST", "/api/v1/dags/api_demo/dagRuns", "op", json={"dag_run_id": "taken"})
    bad_id = web.call("POST", "/api/v1/dags/api_demo/dagRuns", "op",
                      json={"dag_run_id": "../escape"})
    not_object = web.call("POST", "/api/v1/dags/api_demo/dagRuns", "op", json={"conf": [1]})
    by_viewer = web.call("POST", "/api/v1/dags/api_demo/dagRuns", "viewer", json={})

    assert bad_param.status_code == 400 and "rows" in bad_param.json()["detail"]
    assert taken.status_code == 409
    assert bad_id.status_code == 400 and "run_id" in bad_id.json()["detail"]
    assert not_object.status_code == 400
    assert by_viewer.status_code == 403
    assert web.get("/api/v1/dags/api_demo/dagRuns").json()["total_entries"] == 1


def test_runs_are_paged_with_limit_offset_and_order(web: WebServer) -> None:
    for i in range(7):
        trigger(web, dag_run_id=f"run_{i}", logical_date=f"2024-01-0{i + 1}T00:00:00+00:00")

    page = web.get("/api/v1/dags/api_demo/dagRuns?limit=3&offset=3").json()
    newest = web.get("/api/v1/dags/api_demo/dagRuns?limit=2&order_by=-execution_date").json()
    everywhere = web.get("/api/v1/dags/~/dagRuns?limit=1").json()
    bad_order = web.get("/api/v1/dags/api_demo/dagRuns?order_by=password")
    too_big = web.get("/api/v1/dags/api_demo/dagRuns?limit=100000")

    assert page["total_entries"] == 7
    assert [r["dag_run_id"] for r in page["dag_runs"]] == ["run_3", "run_4", "run_5"]
    assert [r["dag_run_id"] for r in newest["dag_runs"]] == ["run_6", "run_5"]
    assert everywhere["total_entries"] == 7 and len(everywhere["dag_runs"]) == 1
    assert bad_order.status_code == 400 and "valid:" in bad_order.json()["detail"]
    assert too_big.status_code == 400


def test_a_tries_log_comes_as_text_or_json_with_a_continuation_token(web: WebServer) -> None:
    trigger(web, dag_run_id="logged", conf={"rows": 4, "token": "s3cr3t-value-42"})
    run_to_end(web, "logged")
    base = "/api/v1/dags/api_demo/dagRuns/logged/taskInstances/extract/logs"

    text = web.get(f"{base}/1", headers={"Accept": "text/plain"})
    first = web.get(f"{base}/1").json()
    rest = web.get(f"{base}/1?token={first['continuation_token']}").json()
    missing = web.get(f"{base}/2")
    bad_token = web.get(f"{base}/1?token=99999999")

    assert text.headers["content-type"].startswith("text/plain")
    assert "extracting 4 rows" in text.text
    assert "s3cr3t-value-42" not in text.text and f"using token {MASK}" in text.text
    assert first["content"] == text.text and rest["content"] == ""
    assert missing.status_code == 404 and "tries 1..1" in missing.json()["detail"]
    assert bad_token.status_code == 400


def test_clear_lists_what_it_would_reset_then_resets_it(web: WebServer) -> None:
    trigger(web, dag_run_id="failing", conf={"fail": True})
    run_to_end(web, "failing")
    assert states(web, "failing") == {"extract": "success", "check": "failed",
                                      "load": "upstream_failed"}

    dry = web.call("POST", "/api/v1/dags/api_demo/clearTaskInstances", "op",
                   json={"dag_run_id": "failing"})
    after_dry = states(web, "failing")
    done = web.call("POST", "/api/v1/dags/api_demo/clearTaskInstances", "op",
                    json={"dag_run_id": "failing", "dry_run": False})

    listed = sorted(t["task_id"] for t in dry.json()["task_instances"])
    assert dry.status_code == 200 and listed == ["check", "load"]
    assert set(dry.json()["task_instances"][0]) == {"task_id", "dag_id", "dag_run_id",
                                                    "execution_date"}
    assert after_dry["check"] == "failed"
    assert sorted(t["task_id"] for t in done.json()["task_instances"]) == listed
    assert states(web, "failing") == {"extract": "success", "check": None, "load": None}
    assert web.get("/api/v1/dags/api_demo/dagRuns/failing").json()["state"] == "queued"


def test_clear_of_chosen_tasks_with_downstream_and_unknown_task(web: WebServer) -> None:
    trigger(web, dag_run_id="fine")
    run_to_end(web, "fine")

    dry = web.call("POST", "/api/v1/dags/api_demo/clearTaskInstances", "op",
                   json={"task_ids": ["check"], "include_downstream": True,
                         "only_failed": False})
    unknown = web.call("POST", "/api/v1/dags/api_demo/clearTaskInstances", "op",
                       json={"task_ids": ["chek"]})

    assert sorted(t["task_id"] for t in dry.json()["task_instances"]) == ["check", "load"]
    assert unknown.status_code == 404 and "did you mean 'check'" in unknown.json()["detail"]


def test_marking_a_task_instance_failed_then_success(web: WebServer) -> None:
    trigger(web, dag_run_id="marked")
    run_to_end(web, "marked")
    path = "/api/v1/dags/api_demo/dagRuns/marked/taskInstances/load"

    failed = web.call("PATCH", path, "op", json={"new_state": "failed"})
    bad = web.call("PATCH", path, "op", json={"new_state": "running"})

    assert failed.status_code == 200 and failed.json()["task_id"] == "load"
    assert states(web, "marked")["load"] == "failed"
    assert bad.status_code == 400
    assert web.call("PATCH", path, "viewer", json={"new_state": "success"}).status_code == 403


def test_import_errors_are_listed_masked(web: WebServer) -> None:
    from mlpipe.masking import mask_secret

    mask_secret("hunter2-password")
    web.store.replace_import_errors({"/dags/broken.py": "SyntaxError near hunter2-password"})

    body = web.get("/api/v1/importErrors").json()

    assert body["total_entries"] == 1
    assert body["import_errors"][0]["filename"] == "/dags/broken.py"
    assert "hunter2" not in body["import_errors"][0]["stack_trace"]


def test_a_body_above_the_limit_is_refused_before_it_is_read(web: WebServer) -> None:
    big = {"conf": {"blob": "x" * (2 * 1024 * 1024)}}

    response = web.call("POST", "/api/v1/dags/api_demo/dagRuns", "op", json=big)

    assert response.status_code == 413
    assert set(response.json()) == ERROR_FIELDS
    assert web.get("/api/v1/dags/api_demo/dagRuns").json()["total_entries"] == 0


def test_health_is_open_and_openapi_lists_the_routes(web: WebServer) -> None:
    health = web.get("/health", None)
    spec = web.get("/api/v1/openapi.json").json()

    assert health.status_code == 200 and health.json()["metadatabase"]["status"] == "healthy"
    for path in ("/api/v1/dags", "/api/v1/dags/{dag_id}/dagRuns",
                 "/api/v1/dags/{dag_id}/clearTaskInstances",
                 "/api/v1/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}/logs/"
                 "{task_try_number}"):
        assert path in spec["paths"], path


def test_metrics_count_runs_and_tries_by_state(web: WebServer) -> None:
    trigger(web, dag_run_id="measured")
    run_to_end(web, "measured")

    text = web.get("/metrics").text

    assert 'mlpipe_dag_runs{state="success"} 1.0' in text
    assert 'mlpipe_task_instances{state="success"} 3.0' in text
    assert "mlpipe_queue_depth 0.0" in text
    assert "mlpipe_task_duration_seconds_count 3.0" in text
    assert web.get("/metrics", None).status_code == 401
