"""The web UI's views of remote logs, datasets, rescheduled sensors and SLA misses, through
a real uvicorn server over a real store (``gaps_site`` in conftest)."""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import Any

import pytest

from mlpipe.runtime.remote_logs import remote_log_uri
from mlpipe.store.entities import TIKey

Site = Any  # conftest.GapsSite

pytestmark = pytest.mark.timeout(120)


def _local_log(site: Site, run_id: str, task_id: str) -> Any:
    [record] = site.engine.store.list_tis("gaps_ingest", run_id, task_ids=[task_id])
    return site.engine.logs_root / record.log_path / "attempt=1.log"


def test_a_log_missing_locally_is_read_from_the_remote_copy_and_says_so(
        gaps_site: Site) -> None:
    key = TIKey("gaps_ingest", gaps_site.ingest_run, "land")
    remote = remote_log_uri(gaps_site.settings.remote_log_uri, key, 1)
    local = _local_log(gaps_site, gaps_site.ingest_run, "land")
    browser = gaps_site.session("viewer")
    task_url = f"/dags/gaps_ingest/runs/{gaps_site.ingest_run}/tasks/land"

    before = browser.page(task_url)
    assert "Showing the log file on this server" in before.text
    local.unlink()  # the try ran "on another machine": only the remote copy is left
    page = browser.page(task_url)
    tail = browser.page(f"{task_url}/log?try=1&offset=0")
    api = f"/api/v1/dags/gaps_ingest/dagRuns/{gaps_site.ingest_run}/taskInstances/land/logs/1"
    text = gaps_site.api(api, Accept="text/plain")
    body = gaps_site.api(api).json()
    rest = gaps_site.api(f"{api}?token={body['continuation_token']}").json()

    assert page.status_code == 200 and "landed 3 images on this machine" in page.text
    assert 'id="log-source"' in page.text and "Showing the remote copy" in page.text
    assert html.escape(remote) in page.text
    assert "is missing" not in page.text
    assert "landed 3 images on this machine" in tail.text
    assert text.status_code == 200 and "landed 3 images" in text.text
    assert text.headers["X-Mlpipe-Log-Source"] == "remote"
    assert body["content"] == text.text and rest["content"] == ""


def _ingest_without_local_log(site: Site) -> tuple[str, Path]:
    """A new finished ingest run whose local log is gone: its id and its remote copy."""
    dag = site.engine.get_dag("gaps_ingest")
    run = site.engine.trigger(dag).run_id
    assert site.engine.run(dag, run).state == "success"
    _local_log(site, run, "land").unlink()
    root = site.settings.remote_log_uri.removeprefix("file://")
    remote = Path(remote_log_uri(root, TIKey("gaps_ingest", run, "land"), 1))
    assert remote.is_file()
    return run, remote


def test_a_log_neither_local_nor_remote_is_a_clear_404(gaps_site: Site) -> None:
    browser = gaps_site.session("viewer")
    run, remote = _ingest_without_local_log(gaps_site)
    remote.unlink()

    page = browser.page(f"/dags/gaps_ingest/runs/{run}/tasks/land")
    api = gaps_site.api(f"/api/v1/dags/gaps_ingest/dagRuns/{run}/taskInstances/land/logs/1")

    assert "The log of try 1 is missing" in page.text and "log-source" not in page.text
    assert api.status_code == 404
    assert "missing on this machine nor in MLPIPE_REMOTE_LOG_URI" in api.json()["detail"]


def test_an_unreadable_remote_copy_is_named_on_the_page_and_a_502_in_the_api(
        gaps_site: Site) -> None:
    browser = gaps_site.session("viewer")
    run, remote = _ingest_without_local_log(gaps_site)
    remote.unlink()
    remote.mkdir()  # the store refuses to read it

    page = browser.page(f"/dags/gaps_ingest/runs/{run}/tasks/land")
    api = gaps_site.api(f"/api/v1/dags/gaps_ingest/dagRuns/{run}/taskInstances/land/logs/1")

    assert page.status_code == 200  # the rest of the task page is still there
    error = re.search(r'id="log-error">([^<]+)', page.text)
    assert error and "remote copy under MLPIPE_REMOTE_LOG_URI could not be read" in error.group(1)
    assert api.status_code == 502 and "could not be read" in api.json()["detail"]


def test_the_datasets_page_lists_updates_producers_consumers_and_changed_keys(
        gaps_site: Site) -> None:
    browser = gaps_site.session("viewer")
    dags = browser.page("/dags")
    page = browser.page("/datasets")
    one = browser.page("/datasets?uri=s3%3A%2F%2Flake%2Flabels%2F")

    assert 'href="/datasets"' in dags.text  # linked from the nav
    assert page.status_code == 200
    rows = dict(re.findall(r'<tr data-uri="([^"]+)">(.*?)</tr>', page.text, re.S))
    assert set(rows) == {"s3://lake/raw/", "s3://lake/labels/"}
    assert "gaps_ingest.land" in rows["s3://lake/raw/"]
    assert "gaps_train" in rows["s3://lake/raw/"] and "gaps_train" in rows["s3://lake/labels/"]
    assert "never" not in rows["s3://lake/raw/"]
    events = re.findall(r'<tr data-event-id="\d+">(.*?)</tr>', page.text, re.S)
    # the other tests may run gaps_ingest again (more events of s3://lake/raw/)
    [labels] = [e for e in events if "s3://lake/labels/" in e]
    assert any("s3://lake/raw/" in e and "gaps_ingest.land" in e for e in events)
    assert "added" in labels and "cats/b.png" in labels and "change under the prefix" in labels
    assert f"/dags/gaps_train/runs/{gaps_site.train_run}" in labels  # the run it triggered
    assert len(re.findall(r'<tr data-event-id=', one.text)) == 1 and "cats/b.png" in one.text


def test_the_dag_list_and_dag_page_show_the_dataset_schedule_and_triggers(
        gaps_site: Site) -> None:
    browser = gaps_site.session("viewer")
    dags = browser.page("/dags")
    grid = browser.page("/dags/gaps_train/grid")
    run = browser.page(f"/dags/gaps_train/runs/{gaps_site.train_run}")

    row = re.search(r'<tr data-dag-id="gaps_train">(.*?)</tr>', dags.text, re.S)
    assert row and "datasets: s3://lake/raw/ and s3://lake/labels/" in row.group(1)
    assert "datasets: s3://lake/raw/ and s3://lake/labels/" in grid.text  # the DAG page
    for page in (grid, run):
        triggers = re.search(r'id="dataset-triggers">(.*?)</div>\s*(?:</div>|\n)', page.text,
                             re.S)
        assert triggers, page.text[:300]
        assert "s3://lake/raw/" in page.text and "cats/b.png" in page.text
        assert "gaps_ingest.land" in page.text


def test_datasets_api_answers_in_airflow_shapes(gaps_site: Site) -> None:
    found = gaps_site.api("/api/v1/datasets").json()
    events = gaps_site.api("/api/v1/datasets/events").json()
    raw_id = next(d["id"] for d in found["datasets"] if d["uri"] == "s3://lake/raw/")
    of_raw = gaps_site.api(f"/api/v1/datasets/events?dataset_id={raw_id}").json()
    by_source = gaps_site.api("/api/v1/datasets/events?source_dag_id=gaps_ingest").json()
    paged = gaps_site.api("/api/v1/datasets?limit=1&offset=1&order_by=-uri").json()
    bad_order = gaps_site.api("/api/v1/datasets?order_by=nope")

    assert found["total_entries"] == 2
    raw = next(d for d in found["datasets"] if d["uri"] == "s3://lake/raw/")
    assert set(raw) >= {"id", "uri", "extra", "created_at", "updated_at", "consuming_dags",
                        "producing_tasks"}
    assert [c["dag_id"] for c in raw["consuming_dags"]] == ["gaps_train"]
    assert [(p["dag_id"], p["task_id"]) for p in raw["producing_tasks"]] == [
        ("gaps_ingest", "land")]
    assert events["total_entries"] >= 2
    newest_labels = next(e for e in events["dataset_events"]
                         if e["dataset_uri"] == "s3://lake/labels/")
    assert set(newest_labels) >= {"id", "dataset_id", "dataset_uri", "extra", "source_dag_id",
                                  "source_task_id", "source_run_id", "source_map_index",
                                  "created_dagruns", "timestamp"}
    assert newest_labels["extra"]["keys_added"] == ["cats/b.png"]
    assert [r["run_id"] for r in newest_labels["created_dagruns"]] == [gaps_site.train_run]
    assert {e["dataset_uri"] for e in of_raw["dataset_events"]} == {"s3://lake/raw/"}
    assert all(e["source_dag_id"] == "gaps_ingest" for e in by_source["dataset_events"])
    assert [d["uri"] for d in paged["datasets"]] == ["s3://lake/labels/"]
    assert paged["total_entries"] == 2
    assert bad_order.status_code == 400


def test_a_rescheduled_sensor_has_its_own_colour_and_text_and_next_poke(
        gaps_site: Site) -> None:
    browser = gaps_site.session("viewer")
    run_id = gaps_site.sensor_run
    [wait] = gaps_site.engine.store.list_tis("gaps_sensor", run_id)
    grid = browser.page("/dags/gaps_sensor/grid")
    graph = browser.page("/dags/gaps_sensor/graph")
    run = browser.page(f"/dags/gaps_sensor/runs/{run_id}")
    task = browser.page(f"/dags/gaps_sensor/runs/{run_id}/tasks/wait")

    assert wait.state == "up_for_reschedule" and wait.reschedule_date is not None
    cell = re.search(r'<a class="cell state-up_for_reschedule"[^>]*data-state="up_for_reschedule"'
                     r'[^>]*aria-label="wait up for reschedule"><span class="abbr">RS</span>',
                     grid.text)
    assert cell, "the grid cell of the waiting sensor"
    assert 'class="node state-up_for_reschedule" data-task="wait"' in graph.text
    assert "up for reschedule ·" in graph.text  # the node's text
    for page in (grid, graph):  # both legends name it
        assert 'data-state="up_for_reschedule">up for reschedule</span>' in page.text
    assert "next poke " + wait.reschedule_date.strftime("%Y-%m-%d %H:%M:%S") in run.text
    poke = re.search(r'<dd id="next-poke">([^<]+)', task.text)
    assert poke and wait.reschedule_date.strftime("%Y-%m-%d %H:%M:%S") in poke.group(1)
    assert 'state-up_for_reschedule" data-state="up_for_reschedule">up for reschedule' in task.text


def test_the_dag_page_lists_its_sla_misses(gaps_site: Site) -> None:
    browser = gaps_site.session("viewer")
    [miss] = [m for m in gaps_site.engine.store.list_sla_misses("gaps_sensor")
              if m.task_id == "wait"]
    grid = browser.page("/dags/gaps_sensor/grid")
    clean = browser.page("/dags/gaps_ingest/grid")

    table = re.search(r'<table class="list" id="sla-misses">(.*?)</table>', grid.text, re.S)
    assert table, "the SLA miss list"
    row = table.group(1)
    assert ">wait</a>" in row and miss.run_id in row
    assert miss.deadline_at.strftime("%Y-%m-%d %H:%M:%S") in row
    assert miss.recorded_at.strftime("%Y-%m-%d %H:%M:%S") in row
    assert "No missed deadlines." in clean.text
