"""A try's log file (appended to, each write on disk at once) and capturing output into it."""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from mlpipe.runtime.log_capture import LogFile, capture_task_output, log_task_line


def test_writes_append_and_are_readable_before_the_file_is_closed(tmp_path: Path) -> None:
    path = tmp_path / "attempt=1.log"
    path.write_text("from an earlier writer\n", encoding="utf-8")

    with LogFile(str(path)) as log:
        assert log.write("first line ✓\n") == len("first line ✓\n")
        assert path.read_text(encoding="utf-8") == "from an earlier writer\nfirst line ✓\n"
        log.write("second line\n")

    assert path.read_text(encoding="utf-8").splitlines() == [
        "from an earlier writer", "first line ✓", "second line"]


def test_a_process_killed_right_after_writing_keeps_the_line(tmp_path: Path) -> None:
    path = tmp_path / "attempt=1.log"
    script = ("import os, signal; from mlpipe.runtime.log_capture import LogFile\n"
              f"log = LogFile({str(path)!r}); log.write('last words\\n')\n"
              "os.kill(os.getpid(), signal.SIGKILL)\n")

    result = subprocess.run([sys.executable, "-c", script], check=False)

    assert result.returncode == -9
    assert path.read_text(encoding="utf-8") == "last words\n"


def test_closing_twice_is_harmless(tmp_path: Path) -> None:
    log = LogFile(str(tmp_path / "a.log"))
    log.close()
    log.close()
    assert os.path.exists(tmp_path / "a.log")


def test_a_stream_kept_past_its_try_writes_to_the_current_try_or_to_stderr(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    first, second = tmp_path / "first.log", tmp_path / "second.log"
    with LogFile(str(first)) as log, capture_task_output(log):
        kept = sys.stdout  # what a library caching sys.stdout during a try holds on to
        print("inside the first try")

    kept.write("between tries\n")
    with LogFile(str(second)) as log, capture_task_output(log):
        kept.write("during the second try\n")

    assert first.read_text(encoding="utf-8") == "inside the first try\n"
    assert second.read_text(encoding="utf-8") == "during the second try\n"
    assert "between tries" in capsys.readouterr().err


def test_a_capture_inside_a_capture_writes_to_its_own_log(tmp_path: Path) -> None:
    outer_path, inner_path = tmp_path / "outer.log", tmp_path / "inner.log"
    with LogFile(str(outer_path)) as outer, capture_task_output(outer):
        print("outer before")
        with LogFile(str(inner_path)) as inner, capture_task_output(inner):
            print("inner")
            logging.getLogger("x").info("inner record")
        print("outer after")
        logging.getLogger("x").info("outer record")

    outer_lines = outer_path.read_text(encoding="utf-8").splitlines()
    inner_lines = inner_path.read_text(encoding="utf-8").splitlines()
    assert [line for line in outer_lines if "{x}" not in line] == ["outer before",
                                                                   "outer after"]
    assert inner_lines[0] == "inner" and inner_lines[1].endswith("INFO - inner record")
    assert len(inner_lines) == 2
    # records reach every open capture: the outer try ran the inner one
    assert outer_lines[-1].endswith("INFO - outer record")


def without_other_handlers(monkeypatch: pytest.MonkeyPatch) -> None:
    """The root logger as in a plain script: pytest's own handlers (added when the test's
    call starts) taken off."""
    monkeypatch.setattr(logging.getLogger(), "handlers", [])


def test_an_engine_line_reads_the_same_written_directly_or_through_logging(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    without_other_handlers(monkeypatch)
    engine = logging.getLogger("mlpipe.task")
    direct, logged = tmp_path / "direct.log", tmp_path / "logged.log"
    records_made: list[object] = []
    factory = logging.getLogRecordFactory()
    logging.setLogRecordFactory(lambda *a, **k: records_made.append(a) or factory(*a, **k))
    try:
        with LogFile(str(direct)) as log, capture_task_output(log):
            log_task_line(engine, "Marking task as %s", "SUCCESS")
    finally:
        logging.setLogRecordFactory(factory)
    assert records_made == []  # nobody else listens: no record is made
    seen: list[logging.LogRecord] = []
    listener = logging.Handler()
    listener.emit = seen.append  # type: ignore[method-assign]
    engine.addHandler(listener)
    try:
        with LogFile(str(logged)) as log, capture_task_output(log):
            log_task_line(engine, "Marking task as %s", "SUCCESS")
    finally:
        engine.removeHandler(listener)

    line = (r"\[\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\] \{mlpipe.task\} INFO - "
            r"Marking task as SUCCESS\n")
    assert re.fullmatch(line, direct.read_text(encoding="utf-8"))
    assert re.fullmatch(line, logged.read_text(encoding="utf-8"))
    assert [r.getMessage() for r in seen] == ["Marking task as SUCCESS"]  # another listener
    assert seen[0].funcName.startswith("test_an_engine_line_reads_the_same")  # the caller


def test_an_engine_line_respects_a_filter_and_the_logger_level(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    without_other_handlers(monkeypatch)
    engine = logging.getLogger("mlpipe.task")
    path = tmp_path / "attempt=1.log"
    monkeypatch.setattr(engine, "filters", [lambda record: "secret" not in record.msg])
    with LogFile(str(path)) as log, capture_task_output(log):
        log_task_line(engine, "a secret line")
        log_task_line(engine, "a plain line")
    monkeypatch.setattr(engine, "filters", [])
    monkeypatch.setattr(engine, "level", logging.WARNING)
    monkeypatch.setattr(engine, "_cache", {})
    with LogFile(str(path)) as log, capture_task_output(log):
        log_task_line(engine, "below the level")

    assert [line.split(" - ", 1)[1] for line in path.read_text().splitlines()] == [
        "a plain line"]
