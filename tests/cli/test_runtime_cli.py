"""``mlpipe db``, ``dags trigger/list-runs/pause/show`` and ``tasks ...`` as a user runs them.

Settings come from the environment (``MLPIPE_DAGS_FOLDER``, ``MLPIPE_EXECUTOR``...) like in a
shell; runs execute with the LocalExecutor against the test's own MLPIPE_HOME.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest
from click.testing import Result
from typer.testing import CliRunner

from mlpipe.cli.main import app
from mlpipe.scheduler.service import Engine
from mlpipe.settings import load_settings
from mlpipe.store.entities import TIKey

DAGS = Path(__file__).resolve().parents[1] / "dags" / "engine"
ENGINE_DAGS = ["clear_rerun", "cli_demo", "executor_contract", "retry_logs", "task_timeout",
               "two_branches", "victim_with_retry", "victim_without_retry", "xcom_resume"]

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(autouse=True)
def shell_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLPIPE_DAGS_FOLDER", str(DAGS))
    monkeypatch.setenv("MLPIPE_EXECUTOR", "local")
    monkeypatch.setenv("MLPIPE_PARALLELISM", "2")
    monkeypatch.setenv("MLPIPE_TASK_LEASE_S", "5")


@pytest.fixture
def mlpipe():
    """``mlpipe("dags", "list")``: the command's result, as the installed script gives it."""
    runner = CliRunner()

    def invoke(*args: str) -> Result:
        return runner.invoke(app, list(args))

    return invoke


@pytest.fixture
def engine():
    """The engine the commands use (same environment), to check what they stored."""
    engine = Engine.from_settings(load_settings())
    yield engine
    engine.store.dispose()


def ok(result: Result) -> str:
    assert result.exit_code == 0, result.output
    return result.output


def one_line_error(result: Result) -> str:
    """The single ``error: ...`` line a failing command prints (exit 1, no traceback)."""
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert lines[0].startswith("error: ")
    return lines[0]


def rows(result: Result) -> list[dict]:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


# -- db ----------------------------------------------------------------------------------------

def test_db_migrate_twice_says_already_at_revision(mlpipe, isolated_env: Path) -> None:
    first = ok(mlpipe("db", "migrate"))
    second = ok(mlpipe("db", "migrate"))

    assert "migrated from empty to revision" in first
    revision = first.split("revision")[-1].strip()
    assert second.strip().endswith(f"already at revision {revision}")
    assert (isolated_env / "mlpipe.db").is_file()


def test_db_reset_needs_yes(mlpipe) -> None:
    line = one_line_error(mlpipe("db", "reset"))

    assert "add --yes to confirm" in line


def test_db_reset_with_yes_drops_every_run(mlpipe) -> None:
    ok(mlpipe("dags", "trigger", "cli_demo", "--run-id", "r1", "--no-wait"))

    assert "reset to revision" in ok(mlpipe("db", "reset", "--yes"))

    assert rows(mlpipe("dags", "list-runs", "cli_demo", "-o", "json")) == []


# -- dags ----------------------------------------------------------------------------------

def test_trigger_runs_with_conf_and_exits_0(mlpipe, engine: Engine) -> None:
    output = ok(mlpipe("dags", "trigger", "cli_demo", "--conf", '{"greeting": "hi there"}',
                       "--run-id", "r1"))

    assert "created run r1 of cli_demo" in output
    assert output.strip().splitlines()[-1] == "DAG run r1: success"
    assert engine.store.get_run("cli_demo", "r1").conf == {"greeting": "hi there"}
    assert "greeting is hi there" in ok(mlpipe("tasks", "logs", "cli_demo", "hello", "r1"))


def test_trigger_of_a_failing_run_exits_1(mlpipe) -> None:
    result = mlpipe("dags", "trigger", "cli_demo", "--conf", '{"fail": true}', "--run-id", "r1")

    assert result.exit_code == 1, result.output
    assert "check failed: ValueError: asked to fail" in result.output
    assert result.output.strip().splitlines()[-1] == "DAG run r1: failed"


def test_trigger_with_an_existing_run_id_is_one_line(mlpipe) -> None:
    ok(mlpipe("dags", "trigger", "cli_demo", "--run-id", "r1", "--no-wait"))

    line = one_line_error(mlpipe("dags", "trigger", "cli_demo", "--run-id", "r1"))

    assert line == "error: DAG 'cli_demo' already has a run 'r1'; pick another --run-id"


def test_list_runs_json_fields(mlpipe) -> None:
    ok(mlpipe("dags", "trigger", "cli_demo", "--run-id", "r1", "--logical-date", "2024-03-05"))
    mlpipe("dags", "trigger", "cli_demo", "--run-id", "r2", "--conf", '{"fail": true}',
           "--logical-date", "2024-03-06")

    found = rows(mlpipe("dags", "list-runs", "cli_demo", "-o", "json"))

    assert [{k: r[k] for k in ("dag_id", "run_id", "state", "run_type")} for r in found] == [
        {"dag_id": "cli_demo", "run_id": "r1", "state": "success", "run_type": "manual"},
        {"dag_id": "cli_demo", "run_id": "r2", "state": "failed", "run_type": "manual"},
    ]
    assert [datetime.fromisoformat(r["logical_date"]).date().isoformat() for r in found] == [
        "2024-03-05", "2024-03-06"]
    assert all(r["start_date"] and r["end_date"] for r in found)


def test_tasks_states_json(mlpipe) -> None:
    mlpipe("dags", "trigger", "cli_demo", "--run-id", "r1", "--conf", '{"fail": true}')

    found = rows(mlpipe("tasks", "states", "cli_demo", "r1", "-o", "json"))

    assert [(r["task_id"], r["state"], r["try_number"]) for r in found] == [
        ("hello", "success", 1), ("check", "failed", 1)]
    assert all(r["dag_id"] == "cli_demo" and r["run_id"] == "r1" for r in found)
    assert all(r["map_index"] == -1 and r["pid"] and r["start_date"] for r in found)


def test_pause_and_unpause_show_in_dags_list(mlpipe) -> None:
    def paused() -> dict[str, bool]:
        return {r["dag_id"]: r["is_paused"] for r in rows(mlpipe("dags", "list", "-o", "json"))}

    assert sorted(paused()) == ENGINE_DAGS
    assert paused()["cli_demo"] is False

    assert "DAG cli_demo is paused" in ok(mlpipe("dags", "pause", "cli_demo"))
    assert paused()["cli_demo"] is True
    assert paused()["retry_logs"] is False

    assert "DAG cli_demo is unpaused" in ok(mlpipe("dags", "unpause", "cli_demo"))
    assert paused()["cli_demo"] is False


def test_dags_show_tree_and_dot(mlpipe) -> None:
    tree = ok(mlpipe("dags", "show", "cli_demo"))
    dot = ok(mlpipe("dags", "show", "cli_demo", "--dot"))

    assert "cli_demo (2 tasks, in run order)" in tree
    assert tree.index("hello <PythonOperator>") < tree.index("check <PythonOperator>")
    assert dot.startswith('digraph "cli_demo" {')
    assert '"hello" -> "check";' in dot
    assert dot.strip().endswith("}")


# -- tasks ---------------------------------------------------------------------------------

def test_tasks_test_runs_one_task_and_saves_nothing(mlpipe, isolated_env: Path) -> None:
    output = ok(mlpipe("tasks", "test", "cli_demo", "hello"))

    assert "greeting is hello" in output
    assert output.strip().splitlines()[-1] == "hello: success"
    assert rows(mlpipe("dags", "list-runs", "cli_demo", "-o", "json")) == []
    assert not (isolated_env / "logs").exists()


def test_tasks_test_with_a_bad_date_is_one_line(mlpipe) -> None:
    result = mlpipe("tasks", "test", "cli_demo", "hello", "not-a-date")

    assert "error: logical date 'not-a-date' is not an ISO 8601" in one_line_error(result)


@pytest.mark.parametrize("state", ["none", "queued"])
def test_tasks_run_runs_one_instance_once(mlpipe, engine: Engine, state: str) -> None:
    ok(mlpipe("dags", "trigger", "cli_demo", "--run-id", "r1", "--no-wait"))
    key = TIKey("cli_demo", "r1", "hello")
    if state == "queued":
        assert engine.store.transition(key, ["none"], "queued")

    output = ok(mlpipe("tasks", "run", "cli_demo", "hello", "r1"))

    assert output.strip() == "cli_demo/r1/hello: success"
    record = engine.store.get_ti(key)
    assert (record.state, record.try_number) == ("success", 1)
    assert engine.store.get_ti(TIKey("cli_demo", "r1", "check")).state == "none"
    again = one_line_error(mlpipe("tasks", "run", "cli_demo", "hello", "r1"))
    assert "is success, not queued" in again
    assert engine.store.get_ti(key).try_number == 1


def test_tasks_clear_with_wait_reruns_the_failed_task(mlpipe, engine: Engine,
                                                     tmp_path: Path) -> None:
    conf = json.dumps({"fail_once": str(tmp_path / "failed-once")})
    assert mlpipe("dags", "trigger", "cli_demo", "--run-id", "r1", "--conf", conf
                  ).exit_code == 1

    output = ok(mlpipe("tasks", "clear", "cli_demo", "--task", "^check$", "--run-id", "r1",
                       "--wait"))

    assert "cleared 1 task instance(s)" in output
    assert output.strip().splitlines()[-1] == "DAG run r1: success"
    found = rows(mlpipe("tasks", "states", "cli_demo", "r1", "-o", "json"))
    assert [(r["task_id"], r["state"], r["try_number"]) for r in found] == [
        ("hello", "success", 1), ("check", "success", 2)]
    assert engine.store.get_run("cli_demo", "r1").state == "success"


def test_logs_of_both_tries_via_the_task_instance_and_the_cli(mlpipe, engine: Engine,
                                                              isolated_env: Path) -> None:
    dag = engine.get_dag("retry_logs")
    engine.trigger(dag, run_id="r1")
    run = engine.run(dag, "r1")
    ti = run.get_task_instance("flaky")
    assert (run.state, ti.try_number) == ("success", 2)
    folder = isolated_env / "logs" / "dag_id=retry_logs" / "run_id=r1" / "task_id=flaky"

    assert sorted(p.name for p in folder.iterdir()) == ["attempt=1.log", "attempt=2.log"]
    assert ti.try_log(1) == (folder / "attempt=1.log").read_text()
    assert ti.try_log(2) == (folder / "attempt=2.log").read_text()
    assert "hello from try 1" in ti.try_log(1)
    assert "RuntimeError: first try fails" in ti.try_log(1)
    assert "hello from try 2" not in ti.try_log(1)
    assert "hello from try 2" in ti.try_log(2)
    assert "Marking task as SUCCESS" in ti.try_log(2)

    first = ok(mlpipe("tasks", "logs", "retry_logs", "flaky", "r1", "--try", "1"))
    second = ok(mlpipe("tasks", "logs", "retry_logs", "flaky", "r1", "--try", "2"))
    latest = ok(mlpipe("tasks", "logs", "retry_logs", "flaky"))

    assert first.splitlines()[0] == f"*** {folder / 'attempt=1.log'}"
    assert ti.try_log(1) in first and "hello from try 2" not in first
    assert ti.try_log(2) in second and "hello from try 1" not in second
    assert latest == second
    missing = one_line_error(mlpipe("tasks", "logs", "retry_logs", "flaky", "r1", "--try", "3"))
    assert "has tries 1..2; there is no try 3" in missing


# -- errors ----------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["dags", "trigger", "nope"], "DAG 'nope' not found; known: ['clear_rerun', "),
        (["dags", "trigger", "cli_dem"], "did you mean 'cli_demo'?"),
        (["dags", "list-runs", "nope"], "DAG 'nope' not found"),
        (["tasks", "run", "cli_demo", "nope", "r1"],
         "DAG 'cli_demo' has no task 'nope'; known: ['check', 'hello']"),
        (["tasks", "logs", "cli_demo", "helo", "r1"], "did you mean 'hello'?"),
        (["tasks", "states", "cli_demo", "missing"],
         "DAG 'cli_demo' has no run 'missing'; it has no runs yet"),
        (["tasks", "run", "cli_demo", "hello", "missing"], "DAG 'cli_demo' has no run 'missing'"),
        (["tasks", "logs", "cli_demo", "hello"], "DAG 'cli_demo' has no runs yet"),
        (["tasks", "clear", "cli_demo", "--run-id", "missing"],
         "DAG 'cli_demo' has no run 'missing'"),
        (["dags", "trigger", "cli_demo", "--conf", "{bad"], "--conf is not valid JSON"),
        (["dags", "trigger", "cli_demo", "--conf", "[1]"], "--conf must be a JSON object"),
        (["dags", "trigger", "cli_demo", "--logical-date", "31/12/2024"],
         "logical date '31/12/2024' is not an ISO 8601 date"),
    ],
)
def test_bad_input_is_one_line_and_exit_1(mlpipe, args: list[str], message: str) -> None:
    line = one_line_error(mlpipe(*args))

    assert message in line
    assert rows(mlpipe("dags", "list-runs", "cli_demo", "-o", "json")) == []


def test_clear_with_a_regex_matching_no_task_names_the_tasks(mlpipe) -> None:
    ok(mlpipe("dags", "trigger", "cli_demo", "--run-id", "r1"))

    line = one_line_error(mlpipe("tasks", "clear", "cli_demo", "--task", "^zzz$"))

    assert "'^zzz$'" in line
    assert "['check', 'hello']" in line
    assert "DAG '^zzz$'" not in line  # it is a task pattern, not a DAG id


def test_clear_with_an_invalid_regex_is_one_line(mlpipe) -> None:
    ok(mlpipe("dags", "trigger", "cli_demo", "--run-id", "r1"))

    line = one_line_error(mlpipe("tasks", "clear", "cli_demo", "--task", "(unclosed"))

    assert "(unclosed" in line
