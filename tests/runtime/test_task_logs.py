"""dag.test(): what a task prints or logs lands in that task instance's log only."""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime

from mlpipe import DAG, task
from mlpipe.operators import BashOperator

LOGICAL = datetime(2024, 1, 15, tzinfo=UTC)


def test_print_stderr_and_logging_land_in_the_task_log() -> None:
    with DAG("logs", start_date=LOGICAL) as dag:

        @task
        def chatty() -> None:
            print("printed line from chatty")
            sys.stderr.write("stderr line from chatty\n")
            sys.stdout.write("partial line without newline")
            logging.getLogger("x").info("info record from chatty")
            logging.getLogger("x.sub").warning("warning record from chatty")

        @task
        def quiet() -> None:
            print("printed line from quiet")
            logging.getLogger("x").info("info record from quiet")

        chatty() >> quiet()

    run = dag.test(LOGICAL)

    chatty_log = run.get_task_instance("chatty").log
    quiet_log = run.get_task_instance("quiet").log
    for line in ["printed line from chatty", "stderr line from chatty",
                 "partial line without newline", "info record from chatty",
                 "warning record from chatty"]:
        assert line in chatty_log
        assert line not in quiet_log
    for line in ["printed line from quiet", "info record from quiet"]:
        assert line in quiet_log
        assert line not in chatty_log


def test_output_after_the_run_is_not_captured_anymore(capsys) -> None:
    with DAG("logs_restore", start_date=LOGICAL) as dag:

        @task
        def talk() -> None:
            print("inside the task")

        talk()

    run = dag.test(LOGICAL)
    print("outside any task")

    assert "outside any task" not in run.get_task_instance("talk").log
    captured = capsys.readouterr()
    assert "outside any task" in captured.out
    assert "inside the task" not in captured.out
    assert sys.stdout is not None and not hasattr(sys.stdout, "sink")


def test_failing_task_log_has_its_output_and_traceback() -> None:
    with DAG("logs_fail", start_date=LOGICAL) as dag:

        @task
        def broken() -> None:
            print("about to break")
            {}["missing_key"]

        broken()

    run = dag.test(LOGICAL)

    log = run.get_task_instance("broken").log
    assert "about to break" in log
    assert "KeyError" in log
    assert "missing_key" in log
    assert log.index("about to break") < log.index("KeyError")


def test_bash_output_lines_land_in_the_log() -> None:
    with DAG("logs_bash", start_date=LOGICAL) as dag:
        BashOperator(task_id="lines",
                     bash_command="echo first-line; echo second-line >&2; echo third-line")

    run = dag.test(LOGICAL)

    log = run.get_task_instance("lines").log
    assert "first-line" in log
    assert "second-line" in log
    assert log.index("first-line") < log.index("third-line")


def test_root_logger_level_is_restored_after_the_run() -> None:
    root = logging.getLogger()
    before = root.level
    with DAG("logs_level", start_date=LOGICAL) as dag:

        @task
        def levels() -> None:
            logging.getLogger("y").debug("debug noise")
            logging.getLogger("y").error("error signal")

        levels()

    run = dag.test(LOGICAL)

    log = run.get_task_instance("levels").log
    assert "error signal" in log
    assert root.level == before


def test_a_rendered_template_is_logged_and_an_upstream_value_is_not() -> None:
    with DAG("logs_rendered", start_date=LOGICAL) as dag:

        @task
        def produce() -> str:
            return "value-from-upstream"

        @task
        def consume(value: str, note: str) -> str:
            return value + note

        BashOperator(task_id="templated", bash_command="echo run {{ ds }}")
        consume(produce(), "plain text")

    run = dag.test(LOGICAL)

    assert "Rendered bash_command: 'echo run 2024-01-15'" in (
        run.get_task_instance("templated").log)
    consume_log = run.get_task_instance("consume").log
    assert "Rendered" not in consume_log
    assert "Done. Returned value was: 'value-from-upstreamplain text'" in consume_log
