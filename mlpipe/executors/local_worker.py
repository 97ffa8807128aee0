"""A ``LocalExecutor`` pool worker: a warm process that forks one child per try.

The worker is forked from the executor's process once, with mlpipe imported and the DAGs
parsed; it never touches the database itself. It keeps one *standby* child forked ahead:
the standby opens its own database connection and reads the schema, then waits on the
worker's command pipe for a try. It runs that one try and exits, so a try that crashes, sets
globals or environment variables, changes directory, leaves threads or grows its memory takes
all of that with it; the worker reaps it and forks the next standby. A fork of the small,
single-threaded worker costs ~1-2 ms, in the worker's time, not the executor's.

Messages are JSON lines on pipes (never pickle):
- executor -> worker (read by the standby child; a 4-byte length, then the JSON):
  ``{"key": [...], "attempt": n, "env": {}}`` or ``{"stop": true}``;
- worker -> executor: ``{"child": pid}`` when a standby is forked, ``{"exit": code,
  "child": pid}`` when it ended; the child itself writes ``{"attempt": n, "code": c}`` once
  its try's result is recorded (so the next try need not wait for its teardown).
Each line is written with one ``os.write`` below ``PIPE_BUF``, so the worker's and the
child's lines on the shared pipe never interleave.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import signal
import struct
import sys
import traceback
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from mlpipe.executors.process_watch import set_parent_death_signal
from mlpipe.store.entities import TIKey

if TYPE_CHECKING:
    from mlpipe.executors.base import ExecutionEnv

#: exit code of a child that found its task instance no longer queued
NOT_CLAIMED = 3
#: exit code of a standby told to stop (or whose executor is gone): its worker ends too
RETIRED = 4
#: exit code of a child whose try failed outside the task (the runner itself raised)
CRASHED = 70
#: the longest command line the executor sends (a key's ids and a try's environment)
MAX_COMMAND = 1 << 20
#: lines written on the shared event pipe stay below this, so they are atomic
PIPE_BUF = 4096


def send_line(fd: int, message: Mapping[str, Any]) -> None:
    """Write ``message`` as one JSON line (in one ``write`` when it is below ``PIPE_BUF``)."""
    data = json.dumps(message, separators=(",", ":")).encode() + b"\n"
    while data:
        written = os.write(fd, data)
        data = data[written:]


class LineReader:
    """Reads a worker's JSON event lines from a non-blocking pipe, keeping partial ones."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self._buffer = b""

    def available(self) -> list[dict[str, Any]] | None:
        """The complete lines readable now without blocking (the fd is non-blocking)."""
        eof = False
        try:
            while True:
                chunk = os.read(self.fd, 65536)
                if not chunk:
                    eof = True
                    break
                self._buffer += chunk
        except BlockingIOError:
            pass
        lines = self._take()
        return None if eof and not lines else lines

    def _take(self) -> list[dict[str, Any]]:
        if b"\n" not in self._buffer:
            return []
        *lines, self._buffer = self._buffer.split(b"\n")
        return [json.loads(line) for line in lines if line]


def try_command(key: TIKey, attempt: int, environment: Mapping[str, str]) -> dict[str, Any]:
    """The command that gives a worker a try: the key, the attempt and its env vars."""
    return {"key": [key.dag_id, key.task_id, key.run_id, key.map_index], "attempt": attempt,
            "env": dict(environment)}


def apply_environment(environment: Mapping[str, str]) -> None:
    """Set a try's own environment variables in its (forked) process before it runs."""
    os.environ.update(environment)


def worker_main(env: ExecutionEnv, commands: int, events: int, parent: int,
                foreign: list[int]) -> None:
    """The worker's loop: fork a standby, wait for it to end, report it, again.

    ``commands`` / ``events``: this worker's pipe ends; ``foreign``: descriptors it inherited
    that belong to the executor (other workers' pipes), closed here.
    """
    os.setsid()  # out of the terminal's process group: Ctrl-C goes to the executor
    set_parent_death_signal(signal.SIGKILL)  # the worker dies with its executor
    if os.getppid() != parent:
        os._exit(RETIRED)
    for fd in foreign:
        with contextlib.suppress(OSError):
            os.close(fd)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    # Never touch the executor's pooled connections: drop them unclosed; each child opens
    # its own. The engine's compiled-statement cache comes along.
    env.store.engine.dispose(close=False)
    while True:
        gc.freeze()  # the child's collector must not walk (and so copy) inherited objects
        pid = os.fork()
        if pid == 0:
            _child_main(env, commands, events)  # never returns
        send_line(events, {"child": pid})
        code = _wait(pid)
        send_line(events, {"exit": code, "child": pid})
        if code == RETIRED:
            os._exit(0)


def _wait(pid: int) -> int:
    while True:
        try:
            _, status = os.waitpid(pid, 0)
        except InterruptedError:  # pragma: no cover - PEP 475 retries it
            continue
        return os.waitstatus_to_exitcode(status)


def _child_main(env: ExecutionEnv, commands: int, events: int) -> None:
    """A standby: warm up, take one command, run its try, report, exit. Never returns."""
    code = CRASHED
    try:
        set_parent_death_signal(signal.SIGKILL)  # a standby dies with its worker
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        env.store.warm_up()  # connect and read the schema before there is a try to wait
        message = _next_command(commands)
        if message is None or message.get("stop"):
            code = RETIRED
            return
        # A try, once given, outlives its worker and a killed scheduler (the next scheduler
        # adopts it through its heartbeat): the death signal is cleared.
        set_parent_death_signal(0)
        os.setsid()  # own process group: a kill reaches every process the try starts
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, signal.default_int_handler)
        dag_id, task_id, run_id, map_index = message["key"]
        key = TIKey(dag_id, run_id, task_id, int(map_index))
        apply_environment(message.get("env") or {})
        try:
            outcome = env.runner.run(
                key, on_heartbeat_lost=lambda: os.kill(os.getpid(), signal.SIGTERM))
        finally:
            env.store.dispose()
        code = 0 if outcome is not None else NOT_CLAIMED
        with contextlib.suppress(OSError):  # the result is recorded: the executor goes on
            send_line(events, {"attempt": message["attempt"], "code": code})
    except BaseException:  # whatever happens, this process must not return
        with contextlib.suppress(Exception):
            traceback.print_exc(file=sys.stderr)
            sys.stderr.flush()
    finally:
        os._exit(code)


def _next_command(commands: int) -> dict[str, Any] | None:
    """Wait for the executor's next command on the command pipe (None: end of file).

    Only one child of a worker lives at a time, so it alone reads the pipe; a command is a
    length and that many bytes, so whatever follows is left for the next child.
    """
    header = _read_exactly(commands, 4)
    if header is None:
        return None
    (size,) = struct.unpack("!I", header)
    if size > MAX_COMMAND:
        raise ValueError(f"command of {size} bytes; at most {MAX_COMMAND}")
    body = _read_exactly(commands, size)
    if body is None:
        return None
    message: dict[str, Any] = json.loads(body)
    return message


def _read_exactly(fd: int, size: int) -> bytes | None:
    data = b""
    while len(data) < size:
        chunk = os.read(fd, size - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def send_command(fd: int, message: Mapping[str, Any]) -> None:
    """Write one command for a worker's next child: its length, then its JSON."""
    body = json.dumps(message, separators=(",", ":")).encode()
    if len(body) > MAX_COMMAND:
        raise ValueError(f"command of {len(body)} bytes; at most {MAX_COMMAND}")
    data = struct.pack("!I", len(body)) + body
    while data:
        data = data[os.write(fd, data):]
