"""The pure view builders of the pages: grid, graph, trigger form, ANSI logs, MLflow links."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from mlpipe import DAG, Param, TaskGroup, task
from mlpipe.masking import mask_secret
from mlpipe.operators import EmptyOperator
from mlpipe.store.entities import DagRunRecord, TaskInstanceRecord
from mlpipe.web.views.ansi import ansi_to_html
from mlpipe.web.views.dag_list import Page, dag_rows
from mlpipe.web.views.graph import layout_graph
from mlpipe.web.views.grid import build_grid
from mlpipe.web.views.mlflow_links import link_for_uri, links_for_uris
from mlpipe.web.views.params_form import form_fields, parse_form
from mlpipe.web.views.states import css_class, label, summary_state

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _run(run_id: str, state: str = "success") -> DagRunRecord:
    return DagRunRecord("d", run_id, "manual", T0, T0, T0, {}, state, T0, None, None)


def _ti(run_id: str, task_id: str, state: str, map_index: int = -1) -> TaskInstanceRecord:
    return TaskInstanceRecord("d", run_id, task_id, map_index, state, 1, 1, "EmptyOperator",
                              None, None, None, None, None, None, None, None, None, None)


@pytest.fixture
def grouped_dag() -> DAG:
    with DAG("d", start_date=T0) as dag:
        start = EmptyOperator(task_id="start")
        with TaskGroup("prep") as prep:
            EmptyOperator(task_id="clean") >> EmptyOperator(task_id="split")

        @task
        def shard(x: int) -> int:
            return x

        mapped = shard.expand(x=[1, 2, 3])
        start >> prep >> mapped
    return dag


def test_grid_rows_follow_the_dag_with_groups_and_a_mapped_cell_that_counts(grouped_dag: DAG
                                                                            ) -> None:
    runs = [_run("r1"), _run("r2", "failed")]
    tis = {"r1": [_ti("r1", "start", "success"), _ti("r1", "prep.clean", "success"),
                  _ti("r1", "prep.split", "success")]
           + [_ti("r1", "shard", "success", i) for i in range(3)],
           "r2": [_ti("r2", "start", "success"), _ti("r2", "prep.clean", "failed"),
                  _ti("r2", "prep.split", "upstream_failed"),
                  _ti("r2", "shard", "upstream_failed")]}
    grid = build_grid(grouped_dag, runs, tis)
    assert [(r.node_id, r.depth, r.is_group) for r in grid.rows] == [
        ("start", 0, False), ("prep", 0, True), ("prep.clean", 1, False),
        ("prep.split", 1, False), ("shard", 0, False)]
    prep = grid.rows[1]
    assert [c.state for c in prep.cells] == ["success", "failed"]
    assert grid.rows[2].label == "clean"
    shard = grid.rows[4]
    assert shard.is_mapped
    assert shard.cells[0].counts == (("success", 3),)
    assert [i.map_index for i in shard.cells[0].instances] == [0, 1, 2]


def test_a_collapsed_group_is_one_row_summing_its_tasks(grouped_dag: DAG) -> None:
    tis = {"r1": [_ti("r1", "prep.clean", "success"), _ti("r1", "prep.split", "running")]}
    grid = build_grid(grouped_dag, [_run("r1", "running")], tis, collapsed={"prep"})
    assert [r.node_id for r in grid.rows] == ["start", "prep", "shard"]
    assert grid.rows[1].collapsed
    assert grid.rows[1].cells[0].state == "running"
    assert dict(grid.rows[1].cells[0].counts) == {"success": 1, "running": 1}


def test_summary_state_shows_what_needs_attention_first() -> None:
    assert summary_state(["success", "failed", "running"]) == "failed"
    assert summary_state(["success", "running"]) == "running"
    assert summary_state(["success", "skipped"]) == "success"
    assert summary_state([]) == "none"
    assert label("up_for_retry") == "up for retry"
    assert css_class("<script>") == "state-none"


def test_graph_layers_follow_the_longest_path_and_edges_join_the_nodes(grouped_dag: DAG) -> None:
    layout = layout_graph(grouped_dag, {"start": "success"})
    x = {n.task_id: n.x for n in layout.nodes}
    assert x["start"] < x["prep.clean"] < x["prep.split"] < x["shard"]
    assert {(e.source, e.target) for e in layout.edges} == {
        ("start", "prep.clean"), ("prep.clean", "prep.split"), ("prep.split", "shard")}
    assert next(n for n in layout.nodes if n.task_id == "start").state == "success"
    assert all(n.x + layout.node_w <= layout.width for n in layout.nodes)


def test_graph_of_a_diamond_puts_siblings_in_one_column() -> None:
    with DAG("diamond", start_date=T0) as dag:
        a, b, c, d = (EmptyOperator(task_id=t) for t in "abcd")
        a >> [b, c] >> d
    nodes = {n.task_id: n for n in layout_graph(dag).nodes}
    assert nodes["b"].x == nodes["c"].x and nodes["b"].y != nodes["c"].y
    assert nodes["d"].x > nodes["b"].x


@pytest.fixture
def params() -> dict[str, object]:
    return {"epochs": Param(3, type="integer", minimum=1, description="Training epochs"),
            "lr": Param(0.01, type="number", maximum=1),
            "model": Param("cnn", enum=["cnn", "resnet18"]),
            "augment": Param(False, type="boolean"),
            "classes": Param(["a", "b"], type="array"),
            "name": Param(type="string"),
            "plain": 5}


def test_form_fields_show_types_defaults_enums_and_descriptions(params: dict) -> None:
    fields = {f.name: f for f in form_fields(params)}
    assert (fields["epochs"].kind, fields["epochs"].value) == ("integer", "3")
    assert fields["epochs"].description == "Training epochs"
    assert fields["model"].kind == "enum" and fields["model"].options == ("cnn", "resnet18")
    assert fields["augment"].kind == "boolean" and not fields["augment"].checked
    assert fields["classes"].value == '["a", "b"]'
    assert fields["name"].required and fields["name"].value == ""
    assert fields["plain"].kind == "json" and fields["plain"].value == "5"


def test_parse_form_gives_a_typed_conf(params: dict) -> None:
    conf, errors = parse_form(params, {"epochs": "7", "lr": "", "model": "resnet18",
                                       "augment": "true", "classes": '["x"]', "name": "run",
                                       "plain": "6"})
    assert errors == {}
    assert conf == {"epochs": 7, "model": "resnet18", "augment": True, "classes": ["x"],
                    "name": "run", "plain": 6}


def test_parse_form_names_each_wrong_field_and_keeps_the_values(params: dict) -> None:
    form = {"epochs": "0", "lr": "fast", "model": "vgg", "classes": "[1,", "name": ""}
    _conf, errors = parse_form(params, form)
    assert set(errors) == {"epochs", "lr", "model", "classes", "name"}
    assert "minimum" in errors["epochs"] or "less than" in errors["epochs"]
    assert errors["lr"] == "'fast' is not a number"
    assert "not valid JSON" in errors["classes"]
    assert errors["name"].startswith("required")
    shown = {f.name: f for f in form_fields(params, form, errors)}
    assert shown["lr"].value == "fast" and shown["lr"].error == errors["lr"]


def test_ansi_colours_become_classes_and_html_is_escaped() -> None:
    html = str(ansi_to_html("\x1b[1;31mERROR\x1b[0m <b>x</b> \x1b[38;5;82mgreen\x1b[39m "
                            "\x1b[38;2;1;2;3mrgb\x1b[0m\x1b[2K"))
    assert '<span class="ansi-fg-red ansi-bold">ERROR</span>' in html
    assert "&lt;b&gt;x&lt;/b&gt;" in html
    assert 'style="color:#5fff00"' in html and 'style="color:#010203"' in html
    assert "\x1b" not in html


def test_ansi_rendering_masks_registered_secrets() -> None:
    mask_secret("hunter2-views-secret")
    html = str(ansi_to_html("password=\x1b[32mhunter2-views-secret\x1b[0m"))
    assert "hunter2-views-secret" not in html and "***" in html


def test_mlflow_links_for_runs_and_registered_versions() -> None:
    ui = "http://127.0.0.1:5000/"
    assert link_for_uri(ui, "runs:/abc123/model").url == "http://127.0.0.1:5000/#/runs/abc123"
    model = link_for_uri(ui, "models:/digits classifier/3")
    assert model.url == "http://127.0.0.1:5000/#/models/digits%20classifier/versions/3"
    assert link_for_uri(ui, "models:/m-0123") is None
    assert link_for_uri(ui, "runs:/<script>/x") is None
    assert link_for_uri(ui, "file:///tmp/x") is None
    assert len(links_for_uris(ui, ["runs:/a/x", "runs:/a/y", "models:/m/1"])) == 2


def test_dag_rows_read_the_api_dag_objects_and_pages_count() -> None:
    api_dag = {"dag_id": "daily", "is_paused": True, "timetable_description": "@daily",
               "schedule_interval": {"__type": "CronExpression", "value": "@daily"},
               "tags": [{"name": "ml"}], "description": None,
               "next_dagrun": "2026-01-02T00:00:00+00:00"}
    [row] = dag_rows([api_dag], {"daily": _run("r1")})
    assert (row.is_paused, row.schedule, row.tags) == (True, "@daily", ("ml",))
    assert row.next_run == datetime(2026, 1, 2, tzinfo=UTC) and row.last_run.run_id == "r1"
    page = Page(25, 25, 60)
    assert (page.previous, page.next, page.first_shown, page.last_shown) == (0, 50, 26, 50)
    assert Page(50, 25, 60).next is None
