"""The HTML pages through a real uvicorn server: what they show, who may act, CSRF, masking."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
import requests

from mlpipe.core.states import TaskInstanceState as S
from mlpipe.store.entities import TIKey

Browser = Any  # conftest.Browser: a logged-in requests session with ``page``/``post_form``
Site = Any  # conftest.DemoSite


def _cells(html: str) -> dict[str, str]:
    """task id -> state of each plain grid cell (its accessible label)."""
    return dict(re.findall(r'aria-label="([\w.]+) ([a-z ]+)"', html))


def _run_ids(site: Site) -> list[str]:
    return [r.run_id for r in site.engine.store.list_runs("pages_demo")]


def test_dag_list_shows_the_dag_its_last_run_tags_and_a_pause_toggle(
        demo_site: Site, browser_as: Callable[[str], Browser]) -> None:
    page = browser_as("op").page("/dags")
    assert page.status_code == 200
    row = page.text.split('data-dag-id="pages_demo"', 1)[1].split("</tr>", 1)[0]
    assert 'data-state="success"' in row and ">success<" in row
    assert 'href="/dags?tag=web"' in row
    assert 'hx-post="/dags/pages_demo/pause"' in row
    assert 'href="/dags/pages_demo/trigger"' in row


def test_dag_list_banner_names_a_file_that_failed_to_import(
        demo_site: Site, browser_as: Callable[[str], Browser],
        monkeypatch: pytest.MonkeyPatch) -> None:
    from mlpipe.web import context as web_context

    broken = demo_site.settings.dags_folder / "broken.py"
    broken.write_text("raise RuntimeError('boom here')\n")
    monkeypatch.setattr(web_context, "REFRESH_S", 0.0)
    try:
        page = browser_as("viewer").page("/dags")
        assert 'id="import-errors"' in page.text and "broken.py" in page.text
    finally:
        broken.unlink()
        browser_as("viewer").page("/dags")


def test_grid_cells_carry_the_state_as_text_and_mapped_cells_count(
        demo_site: Site, browser_as: Callable[[str], Browser]) -> None:
    page = browser_as("viewer").page("/dags/pages_demo/grid")
    assert page.status_code == 200
    cells = _cells(page.text)
    assert cells["start"] == "success" and cells["prep.clean"] == "success"
    assert 'title="shard: 3 success"' in page.text  # epochs=3 -> three mapped instances
    assert f"/runs/{demo_site.run_id}/tasks/shard?map_index=2" in page.text
    collapsed = browser_as("viewer").page("/dags/pages_demo/grid?collapse=prep")
    assert "prep.clean" not in _cells(collapsed.text) and "start" in _cells(collapsed.text)
    assert 'aria-expanded="false"' in collapsed.text


def test_grid_pages_through_runs_newest_on_the_right(
        demo_site: Site, browser_as: Callable[[str], Browser]) -> None:
    dag = demo_site.engine.get_dag("pages_demo")
    for day in range(1, 4):
        demo_site.engine.trigger(dag, run_id=f"old{day}", logical_date=f"2020-01-0{day}")
    runs = sorted(demo_site.engine.store.list_runs("pages_demo"), key=lambda r: r.logical_date)
    newest_first = [r.run_id for r in reversed(runs)]
    browser = browser_as("viewer")
    first = browser.page("/dags/pages_demo/grid?limit=2")
    assert re.findall(r'data-run-id="([^"]+)"', first.text) == \
        newest_first[:2][::-1]
    assert f"runs 1-2 of {len(runs)}" in first.text
    older = browser.page("/dags/pages_demo/grid?limit=2&offset=2")
    assert re.findall(r'data-run-id="([^"]+)"', older.text) == \
        newest_first[2:4][::-1]


def test_graph_draws_every_task_and_edge_with_its_state(
        demo_site: Site, browser_as: Callable[[str], Browser]) -> None:
    page = browser_as("viewer").page("/dags/pages_demo/graph",
                                     params={"run_id": demo_site.run_id})
    assert page.status_code == 200 and "<svg" in page.text
    nodes = dict(re.findall(r'data-task="([\w.]+)" data-state="(\w+)"', page.text))
    assert nodes == {"start": "success", "prep.clean": "success", "prep.report": "success",
                     "shard": "success", "wait_for_gate": "success"}
    assert 'data-edge="start->prep.clean"' in page.text


def test_run_page_lists_tasks_durations_and_conf(
        demo_site: Site, browser_as: Callable[[str], Browser]) -> None:
    page = browser_as("viewer").page(f"/dags/pages_demo/runs/{demo_site.run_id}")
    assert page.status_code == 200
    assert "&#34;epochs&#34;: 3" in page.text or '"epochs": 3' in page.text
    assert 'data-task="shard" data-map-index="2"' in page.text
    assert re.search(r"<td>\d+\.\d\d s</td>", page.text)  # durations
    assert "no MLflow run recorded" in page.text
    assert "Clear run" not in page.text  # a viewer gets no buttons


def test_task_log_keeps_colours_and_masks_the_secret(
        demo_site: Site, demo_secret: str, browser_as: Callable[[str], Browser]) -> None:
    page = browser_as("viewer").page(f"/dags/pages_demo/runs/{demo_site.run_id}/tasks/start")
    assert page.status_code == 200
    assert '<span class="ansi-fg-green ansi-bold">coloured OK</span>' in page.text
    assert "connecting with password ***" in page.text
    assert demo_secret not in page.text
    assert 'id="log-end"' in page.text  # finished: no poller


def test_log_tail_returns_what_follows_an_offset(
        demo_site: Site, browser_as: Callable[[str], Browser]) -> None:
    record = demo_site.engine.store.get_ti(TIKey("pages_demo", demo_site.run_id, "start"))
    log = (demo_site.engine.logs_root / record.log_path / "attempt=1.log").read_bytes()
    offset = log.index(b"\x1b[1;32m")
    tail = browser_as("viewer").page(
        f"/dags/pages_demo/runs/{demo_site.run_id}/tasks/start/log?try=1&offset={offset}")
    assert tail.status_code == 200
    assert tail.text.startswith('<span class="ansi-fg-green ansi-bold">coloured OK')
    assert "connecting with password" not in tail.text


def test_a_running_try_gets_a_poller_with_the_next_offset(
        demo_site: Site, browser_as: Callable[[str], Browser]) -> None:
    run_id = demo_site.new_run()
    key = TIKey("pages_demo", run_id, "start")
    assert demo_site.engine.store.transition(key, [S.SUCCESS], S.RUNNING)
    record = demo_site.engine.store.get_ti(key)
    path = demo_site.engine.logs_root / record.log_path / "attempt=1.log"
    size = path.stat().st_size
    with open(path, "a") as log:
        log.write("a partial line")
    browser = browser_as("viewer")
    page = browser.page(f"/dags/pages_demo/runs/{run_id}/tasks/start")
    assert f"offset={size}" in page.text and 'hx-trigger="load delay:1s"' in page.text
    assert "a partial line" not in page.text  # shown once it is a whole line
    with open(path, "a") as log:
        log.write(" now ends\n")
    tail = browser.page(f"/dags/pages_demo/runs/{run_id}/tasks/start/log?try=1&offset={size}")
    assert tail.text.startswith("a partial line now ends\n")
    assert f"offset={size + len('a partial line now ends') + 1}" in tail.text


def test_trigger_form_is_built_from_the_params(
        demo_site: Site, browser_as: Callable[[str], Browser]) -> None:
    page = browser_as("op").page("/dags/pages_demo/trigger")
    assert page.status_code == 200
    assert 'id="param-epochs" name="epochs" type="number"' in page.text
    assert 'value="2"' in page.text and "How many epochs to train" in page.text
    assert re.search(r'<option value="resnet18"\s*>resnet18</option>', page.text)


def test_trigger_with_a_bad_value_shows_the_error_beside_the_field_and_keeps_values(
        demo_site: Site, browser_as: Callable[[str], Browser]) -> None:
    before = _run_ids(demo_site)
    browser = browser_as("op")
    browser.page("/dags/pages_demo/trigger")
    response = browser.post_form("/dags/pages_demo/trigger",
                                 {"epochs": "99", "model": "cnn", "note": "kept text"})
    assert response.status_code == 400
    error = re.search(r'id="error-epochs" role="alert">([^<]+)<', response.text)
    assert error and "50" in error.group(1)
    assert 'value="kept text"' in response.text and 'value="99"' in response.text
    assert _run_ids(demo_site) == before


def test_trigger_creates_a_run_with_the_conf(
        demo_site: Site, browser_as: Callable[[str], Browser]) -> None:
    before = set(_run_ids(demo_site))
    browser = browser_as("op")
    browser.page("/dags/pages_demo/trigger")
    response = browser.post_form("/dags/pages_demo/trigger",
                                 {"epochs": "4", "model": "resnet18", "note": ""})
    assert response.status_code == 303
    assert response.headers["location"].startswith("/dags/pages_demo/grid?triggered=")
    [new] = set(_run_ids(demo_site)) - before
    assert demo_site.engine.store.get_run("pages_demo", new).conf == {"epochs": 4,
                                                                    "model": "resnet18"}


def test_a_form_post_without_the_csrf_token_is_refused(
        demo_site: Site, browser_as: Callable[[str], Browser]) -> None:
    before = _run_ids(demo_site)
    browser = browser_as("op")
    response = browser.post_form("/dags/pages_demo/trigger", {"epochs": "4"}, csrf=False)
    assert response.status_code == 403
    toggle = browser.post_form("/dags/pages_demo/pause", {"is_paused": "true"}, csrf=False,
                               htmx=True)
    assert toggle.status_code == 403
    assert _run_ids(demo_site) == before
    assert not demo_site.engine.store.get_dag("pages_demo").is_paused


def test_pause_toggle_with_the_htmx_header_returns_the_new_toggle(
        demo_site: Site, browser_as: Callable[[str], Browser]) -> None:
    browser = browser_as("op")
    try:
        response = browser.post_form("/dags/pages_demo/pause", {"is_paused": "true"}, htmx=True)
        assert response.status_code == 200
        assert 'class="toggle paused"' in response.text and ">paused</button>" in response.text
        assert demo_site.engine.store.get_dag("pages_demo").is_paused
    finally:
        demo_site.engine.store.set_paused("pages_demo", False)
    bad = browser.post_form("/dags/pages_demo/pause", {"is_paused": "maybe"}, htmx=True)
    assert bad.status_code == 400 and "is_paused must be" in bad.text


def test_clear_lists_the_task_and_its_downstream_before_clearing(
        demo_site: Site, browser_as: Callable[[str], Browser]) -> None:
    run_id = demo_site.new_run()
    store = demo_site.engine.store
    browser = browser_as("op")
    confirm = browser.page(f"/dags/pages_demo/runs/{run_id}/clear?task_id=prep.report")
    assert confirm.status_code == 200
    assert sorted(re.findall(r'<tr data-task="([\w.]+)"', confirm.text)) == [
        "prep.report", "wait_for_gate"]
    assert store.get_ti(TIKey("pages_demo", run_id, "prep.report")).state == "success"
    done = browser.post_form(f"/dags/pages_demo/runs/{run_id}/clear",
                             {"task_id": "prep.report", "downstream": "true",
                              "only_failed": "false"})
    assert done.status_code == 303 and "cleared=2" in done.headers["location"]
    states = {r.task_id: r.state for r in store.list_tis("pages_demo", run_id)}
    assert states["prep.report"] == states["wait_for_gate"] == "none"
    assert states["start"] == "success"


def test_mark_failed_lists_the_instance_then_sets_it(
        demo_site: Site, browser_as: Callable[[str], Browser]) -> None:
    run_id = demo_site.new_run()
    browser = browser_as("op")
    confirm = browser.page(f"/dags/pages_demo/runs/{run_id}/mark/failed?task_id=start")
    assert re.findall(r'<tr data-task="([\w.]+)"', confirm.text) == ["start"]
    done = browser.post_form(f"/dags/pages_demo/runs/{run_id}/mark/failed",
                             {"task_id": "start", "map_index": "-1"})
    assert done.status_code == 303
    assert demo_site.engine.store.get_ti(TIKey("pages_demo", run_id, "start")).state == "failed"


def test_a_viewer_sees_no_action_buttons_and_is_refused(
        demo_site: Site, browser_as: Callable[[str], Browser]) -> None:
    before = _run_ids(demo_site)
    browser = browser_as("viewer")
    dags = browser.page("/dags")
    assert "hx-post" not in dags.text and "/trigger" not in dags.text
    task = browser.page(f"/dags/pages_demo/runs/{demo_site.run_id}/tasks/start")
    assert "Clear (with downstream)" not in task.text and "Mark failed" not in task.text
    for path in ("/dags/pages_demo/trigger", f"/dags/pages_demo/runs/{demo_site.run_id}/clear"):
        assert browser.page(path).status_code == 403
    assert browser.post_form("/dags/pages_demo/trigger", {"epochs": "3"}).status_code == 403
    assert browser.post_form("/dags/pages_demo/pause", {"is_paused": "true"},
                             htmx=True).status_code == 403
    assert _run_ids(demo_site) == before
    assert not demo_site.engine.store.get_dag("pages_demo").is_paused


@pytest.mark.parametrize("path", [
    "/dags/nope/grid", "/dags/pages_demo/runs/missing", "/dags/pages_demo/runs/{run}/tasks/nope",
    "/dags/pages_demo/runs/{run}/tasks/start?try=9",
])
def test_unknown_ids_get_an_html_error_that_names_them(
        path: str, demo_site: Site, browser_as: Callable[[str], Browser]) -> None:
    page = browser_as("viewer").page(path.format(run=demo_site.run_id))
    assert page.status_code in (400, 404)
    assert page.headers["content-type"].startswith("text/html")
    assert 'role="alert"' in page.text


def test_pages_without_a_session_redirect_to_the_login_form(demo_site: Site) -> None:
    response = requests.get(demo_site.url + "/dags/pages_demo/grid",
                            headers={"Accept": "text/html"}, allow_redirects=False, timeout=30)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/login?next=")


def test_static_files_are_served_from_the_package(demo_site: Site) -> None:
    htmx = requests.get(demo_site.url + "/static/vendor/htmx.min.js", timeout=30)
    assert htmx.status_code == 200 and "htmx" in htmx.text[:2000]
    css = requests.get(demo_site.url + "/static/mlpipe.css", timeout=30)
    assert ".state-success" in css.text


def test_run_and_task_pages_link_mlflow_and_show_lineage_and_masked_conf(
        demo_site: Site, browser_as: Callable[[str], Browser]) -> None:
    from mlpipe.masking import mask_secret

    token = "tok-conf-secret-4242"
    mask_secret(token)  # what reading a sensitive variable or connection does
    run_id = demo_site.new_run(epochs=3, api_token=token)
    store = demo_site.engine.store
    store.set_mlflow_run_id("pages_demo", run_id, "0123abcd")
    store.record_artifacts(TIKey("pages_demo", run_id, "start"), 1,
                           [{"uri": "file:///data/images.manifest", "kind": "dataset"}],
                           [{"uri": "s3://bucket/images/", "etag": '"etag-1"'}])
    store.record_artifacts(TIKey("pages_demo", run_id, "prep.report"), 1,
                           [{"uri": "models:/digits/3", "kind": "model"}],
                           [{"uri": "file:///data/images.manifest"}])
    browser = browser_as("viewer")
    run = browser.page(f"/dags/pages_demo/runs/{run_id}").text
    assert 'href="http://127.0.0.1:5000/#/runs/0123abcd"' in run
    assert 'href="http://127.0.0.1:5000/#/models/digits/versions/3"' in run
    assert "s3://bucket/images/" in run and "etag-1" in run
    assert token not in run and "***" in run
    task = browser.page(f"/dags/pages_demo/runs/{run_id}/tasks/prep.report").text
    assert "#/models/digits/versions/3" in task and "model digits version 3" in task
    lineage = browser.page("/lineage", params={"uri": "models:/digits/3"}).text
    assert "file:///data/images.manifest" in lineage and "s3://bucket/images/" in lineage
    assert f"/dags/pages_demo/runs/{run_id}/tasks/start" in lineage
    unknown = browser.page("/lineage", params={"uri": "file:///never/made"})
    assert unknown.status_code == 404 and "no task recorded" in unknown.text


def test_a_mapped_task_opens_its_first_instance_which_links_the_others(
        demo_site: Site, browser_as: Callable[[str], Browser]) -> None:
    browser = browser_as("viewer")
    path = f"/dags/pages_demo/runs/{demo_site.run_id}/tasks/shard"
    response = browser.page(path)
    assert response.status_code == 303 and response.headers["location"].endswith(
        "?map_index=0")
    first = browser.page(path + "?map_index=0").text
    assert 'href="?map_index=2"' in first and "shard [0]" in first



def test_mark_a_run_success_lists_its_unfinished_instances_first(
        demo_site: Site, browser_as: Callable[[str], Browser]) -> None:
    dag = demo_site.engine.get_dag("pages_demo")
    record = demo_site.engine.trigger(dag, conf={"epochs": 2})  # queued, nothing ran
    browser = browser_as("op")
    confirm = browser.page(f"/dags/pages_demo/runs/{record.run_id}/mark/success")
    assert confirm.status_code == 200
    assert sorted(re.findall(r'<tr data-task="([\w.]+)"', confirm.text)) == sorted(dag.task_dict)
    done = browser.post_form(f"/dags/pages_demo/runs/{record.run_id}/mark/success", {})
    assert done.status_code == 303
    store = demo_site.engine.store
    assert store.get_run("pages_demo", record.run_id).state == "success"
    assert {r.state for r in store.list_tis("pages_demo", record.run_id)} == {"success"}
    bad = browser.page(f"/dags/pages_demo/runs/{record.run_id}/mark/running")
    assert bad.status_code == 400 and "can mark" in bad.text
