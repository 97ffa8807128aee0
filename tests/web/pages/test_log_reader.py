"""Reading a try's log in pieces: whole lines while it is written, the tail of a long log,
and nothing outside the logs root."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlpipe.errors import StoreError
from mlpipe.store.entities import TaskInstanceRecord
from mlpipe.web.pages.log_reader import log_file, read_piece


def _record(log_path: str | None, try_number: int = 1) -> TaskInstanceRecord:
    return TaskInstanceRecord("d", "r", "t", -1, "running", try_number, 1, "Op", None, None,
                              None, None, None, None, None, None, log_path, None)


def test_a_piece_of_a_written_log_ends_at_its_last_whole_line(tmp_path: Path) -> None:
    log = tmp_path / "attempt=1.log"
    log.write_bytes("one\ntwo é\nthr".encode())
    piece = read_piece(log, 0, writing=True)
    assert piece.text == "one\ntwo é\n" and piece.next_offset == len("one\ntwo é\n".encode())
    assert read_piece(log, piece.next_offset, writing=True).text == ""
    assert read_piece(log, piece.next_offset, writing=False).text == "thr"


def test_a_long_log_opens_at_its_tail_on_a_line_start(tmp_path: Path) -> None:
    log = tmp_path / "attempt=1.log"
    log.write_text("".join(f"line {i:06d}\n" for i in range(50_000)))  # 600 KB
    piece = read_piece(log, 0, writing=False, tail=True, limit=1000)
    assert piece.skipped_to > 0 and piece.text.startswith("line ")
    assert piece.text.endswith("line 049999\n") and len(piece.text) <= 1000


def test_a_missing_log_is_not_found_and_keeps_the_offset(tmp_path: Path) -> None:
    piece = read_piece(tmp_path / "nope.log", 7, writing=True)
    assert (piece.found, piece.text, piece.next_offset) == (False, "", 7)


def test_a_log_recorded_outside_the_logs_root_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "logs"
    root.mkdir()
    inside = log_file(root, _record(str(root / "dag_id=d")), 1)
    assert inside == root / "dag_id=d" / "attempt=1.log"
    with pytest.raises(StoreError, match="outside the logs root"):
        log_file(root, _record(str(tmp_path / "elsewhere")), 1)
    assert log_file(root, _record(str(root), try_number=2), 3) is None
