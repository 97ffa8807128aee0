"""Reading one try's log in bounded pieces, for the task page and its live tail.

A piece ends at a line end while the try still writes (a line, an escape sequence or a
multi-byte character is never cut in two); the page asks again from ``next_offset``. Only
files inside the logs root are read. When the local file is absent (the try ran on another
machine) and ``MLPIPE_REMOTE_LOG_URI`` is set, the remote copy is read instead
(``read_try_log``), and the piece says which source it came from.
"""

from __future__ import annotations

import dataclasses
import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from mlpipe.errors import StoreError
from mlpipe.runtime.models import TaskInstance
from mlpipe.store.entities import TaskInstanceRecord

#: the most one page or one poll reads of a log
CHUNK_BYTES = 256 * 1024


@dataclass(frozen=True, slots=True)
class LogPiece:
    text: str
    next_offset: int
    #: where the piece starts, when the start of the file was left out (a big log's tail)
    skipped_to: int = 0
    found: bool = True
    #: where the text came from: the local file, or the remote copy's URI ('' if not found)
    source: str = ""
    remote: bool = False
    #: why the remote copy could not be read ('' when it could, or was not needed)
    error: str = ""


def log_file(logs_root: Path, record: TaskInstanceRecord, try_number: int) -> Path | None:
    """The log of try ``try_number`` of ``record`` (None before the try started)."""
    if not 1 <= try_number <= max(record.try_number, 1):
        return None
    path = TaskInstance.from_record(record, None).log_file(try_number)
    if path is None:
        return None
    if not path.resolve().is_relative_to(logs_root.resolve()):
        raise StoreError(f"the log of {record.task_id!r} is recorded at {str(path)!r}, outside "
                         f"the logs root {str(logs_root)!r}; it is not shown")
    return path


def read_piece(path: Path | None, offset: int, *, writing: bool,
               tail: bool = False, limit: int = CHUNK_BYTES) -> LogPiece:
    """Up to ``limit`` bytes from ``offset``; with ``tail`` and a bigger file, its last part.

    While ``writing``, the piece stops after its last complete line.
    """
    if path is None or not path.exists():
        return LogPiece("", offset, found=False)
    with open(path, "rb") as log:
        size = os.fstat(log.fileno()).st_size
        skipped = 0
        if tail and size - offset > limit:
            offset = skipped = _line_start(log, size - limit)
        offset = min(offset, size)
        log.seek(offset)
        data = log.read(limit)
    return _finish(data, offset, skipped, writing, limit, str(path))


def read_bytes_piece(data: bytes, offset: int, *, writing: bool, tail: bool = False,
                     limit: int = CHUNK_BYTES, source: str = "") -> LogPiece:
    """``read_piece`` over a log already in memory (a remote copy)."""
    log = io.BytesIO(data)
    skipped = 0
    if tail and len(data) - offset > limit:
        offset = skipped = _line_start(log, len(data) - limit)
    offset = min(offset, len(data))
    piece = _finish(data[offset:offset + limit], offset, skipped, writing, limit, source)
    return dataclasses.replace(piece, remote=True)


def read_try_log(logs_root: Path, remote_root: str | None, record: TaskInstanceRecord,
                 try_number: int, offset: int, *, writing: bool,
                 tail: bool = False) -> LogPiece:
    """Try ``try_number``'s log from the local file, else from its remote copy under
    ``remote_root`` (``MLPIPE_REMOTE_LOG_URI``), else a piece that is not ``found``."""
    path = log_file(logs_root, record, try_number)
    if (path is not None and path.exists()) or not remote_root or try_number < 1:
        return read_piece(path, offset, writing=writing, tail=tail)
    from mlpipe.errors import ArtifactError
    from mlpipe.runtime.remote_logs import read_remote_log, remote_log_uri

    try:
        text = read_remote_log(remote_root, record.key, try_number)
    except (ArtifactError, OSError) as exc:  # the store is unreachable or refuses
        return LogPiece("", offset, found=False, error=f"the remote copy under "
                        f"MLPIPE_REMOTE_LOG_URI could not be read: {exc}")
    if text is None:
        return LogPiece("", offset, found=False)
    return read_bytes_piece(text.encode(), offset, writing=writing, tail=tail,
                            source=remote_log_uri(remote_root, record.key, try_number))


def _finish(data: bytes, offset: int, skipped: int, writing: bool, limit: int,
            source: str) -> LogPiece:
    if writing or len(data) == limit:
        end = data.rfind(b"\n")
        data = data[:end + 1] if end >= 0 else (data if len(data) == limit else b"")
    return LogPiece(data.decode("utf-8", errors="replace"), offset + len(data), skipped,
                    source=source)


def _line_start(log: BinaryIO, position: int) -> int:
    """The first line start at or after ``position``."""
    log.seek(max(position - 1, 0))
    if position > 0:
        log.readline()
    return int(log.tell())
