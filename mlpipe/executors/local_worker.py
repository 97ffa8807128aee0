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
import itertools
import json
import logging
import os
import signal
import struct
import sys
import threading
import traceback
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mlpipe.executors.process_watch import set_parent_death_signal
from mlpipe.store.entities import TIKey

if TYPE_CHECKING:
    from mlpipe.executors.base import ExecutionEnv
    from mlpipe.runtime.try_runner import TryResult

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


def try_command(key: TIKey, attempt: int, environment: Mapping[str, str],
                resources: Mapping[str, float] | None = None) -> dict[str, Any]:
    """The command that gives a worker a try: the key, the attempt, its env vars and the
    resources it holds (``Workload.resources``, for per-try use on the worker's side)."""
    return {"key": [key.dag_id, key.task_id, key.run_id, key.map_index], "attempt": attempt,
            "env": dict(environment), "resources": dict(resources or {})}


def apply_environment(environment: Mapping[str, str]) -> None:
    """Set a try's own environment variables in its (forked) process before it runs."""
    os.environ.update(environment)


def worker_main(env: ExecutionEnv, commands: int, events: int, parent: int,
                foreign: list[int], isolation: str = "fork",
                limits: TryLimits | None = None) -> None:
    """The worker's loop. ``fork``: fork a standby, wait for it to end, report it, again;
    ``reuse``: run tries itself (``_reuse_loop``).

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
    if isolation == "reuse":
        _reuse_loop(env, commands, events, parent, limits or TryLimits())
    worker = os.getpid()
    while True:
        gc.freeze()  # the child's collector must not walk (and so copy) inherited objects
        pid = os.fork()
        if pid == 0:
            _child_main(env, commands, events, worker)  # never returns
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


def _child_main(env: ExecutionEnv, commands: int, events: int, worker: int) -> None:
    """A standby: warm up, take one command, run its try, report, exit. Never returns."""
    code = CRASHED
    try:
        set_parent_death_signal(signal.SIGKILL)  # a standby dies with its worker
        if os.getppid() != worker:  # it died before the line above
            code = RETIRED
            return
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
        key = _key_of(message)
        apply_environment(message.get("env") or {})
        try:
            report = run_try(env, key, message["attempt"])
        finally:
            env.store.dispose()
        code = report["code"]
        with contextlib.suppress(OSError):  # the result is recorded: the executor goes on
            send_line(events, report)
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


def run_try(env: ExecutionEnv, key: TIKey, attempt: int) -> dict[str, Any]:
    """Run one try in this process; the report for the executor.

    A success this process recorded is reported with its state and skips, so the driver plans
    what follows without reading the instance back; any other outcome it reads from the store.
    """
    recorded: list[bool] = []

    def record(result: TryResult) -> bool:
        recorded.append(env.runner.record(result))
        return recorded[-1]

    result = env.runner.run(key, recorder=record,
                            on_heartbeat_lost=lambda: os.kill(os.getpid(), signal.SIGTERM))
    report: dict[str, Any] = {"attempt": attempt,
                              "code": 0 if result is not None else NOT_CLAIMED}
    if result is not None and recorded == [True] and result.state.value == "success":
        report["state"] = "success"
        if result.skip:
            report["skip"] = list(result.skip)
    return report


def _key_of(message: Mapping[str, Any]) -> TIKey:
    dag_id, task_id, run_id, map_index = message["key"]
    return TIKey(str(dag_id), str(run_id), str(task_id), int(map_index))


@dataclass(frozen=True)
class TryLimits:
    """When a ``reuse`` worker retires after a try instead of running the next one."""

    #: resident memory above what the worker had before its first try, in bytes
    rss_growth: int = 512 * 1024 * 1024
    #: tries run by one worker
    max_tries: int = 10_000


class _Snapshot:
    """What a try may change in its worker's process, taken before it runs.

    Restored after the try: environment variables, working directory, ``sys.path``, signal
    handlers and the blocked-signal mask, the root logger's handlers and level. Detected (the
    worker then retires): threads left running, globals of the task's module rebound or
    containers in them grown or shrunk, memory above the limit, CUDA initialized (a later
    try's ``CUDA_VISIBLE_DEVICES`` would not apply).
    """

    SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGALRM, signal.SIGHUP, signal.SIGUSR1,
               signal.SIGUSR2, signal.SIGCHLD, signal.SIGPIPE)

    def __init__(self, namespaces: list[dict[str, Any]]) -> None:
        self.environ = dict(os.environ)
        self.cwd = os.getcwd()
        self.path = list(sys.path)
        self.handlers = {sig: signal.getsignal(sig) for sig in self.SIGNALS}
        self.mask = signal.pthread_sigmask(signal.SIG_BLOCK, [])
        self.log_handlers, self.log_level = list(logging.root.handlers), logging.root.level
        self.threads = set(threading.enumerate())
        self.namespaces = [(ns, _fingerprint(ns)) for ns in namespaces]

    def restore(self) -> list[str]:
        """Put back what can be; what cannot (the reasons to retire the worker)."""
        if os.environ != self.environ:
            os.environ.clear()
            os.environ.update(self.environ)
        with contextlib.suppress(OSError):
            if os.getcwd() != self.cwd:
                os.chdir(self.cwd)
        sys.path[:] = self.path
        for sig, handler in self.handlers.items():
            if signal.getsignal(sig) is not handler and handler is not None:
                signal.signal(sig, handler)
        signal.pthread_sigmask(signal.SIG_SETMASK, self.mask)
        if logging.root.handlers != self.log_handlers:  # e.g. ``logging.basicConfig``
            logging.root.handlers[:] = self.log_handlers
        if logging.root.level != self.log_level:
            logging.root.setLevel(self.log_level)
        leaks = [f"thread {t.name!r} left running" for t in threading.enumerate()
                 if t not in self.threads and t.is_alive() and t.name != "mlpipe-heartbeat"]
        leaks += [f"globals of {ns.get('__name__')!r} changed"
                  for ns, before in self.namespaces if _fingerprint(ns) != before]
        return leaks


def _fingerprint(namespace: dict[str, Any]) -> dict[str, tuple[int, int]]:
    """Each global's identity, and a container's size: rebinding or growing one shows."""
    marks: dict[str, tuple[int, int]] = {}
    for name, value in list(namespace.items()):
        size = len(value) if isinstance(value, (dict, list, set, bytearray)) else -1
        marks[name] = (id(value), size)
    return marks


def _namespaces(env: ExecutionEnv, key: TIKey) -> list[dict[str, Any]]:
    """The module globals the try's own code runs in (its callable's), when there is one."""
    with contextlib.suppress(Exception):
        task = env.dag_provider(key.dag_id).get_task(key.task_id)
        partial = getattr(task, "partial_kwargs", None) or {}
        function = getattr(task, "python_callable", None) or partial.get("python_callable")
        namespace = getattr(function, "__globals__", None)
        if isinstance(namespace, dict):
            return [namespace]
    return []


def _cuda_initialized() -> bool:
    """Whether a try initialized CUDA in this process (torch, if it was imported at all)."""
    torch = sys.modules.get("torch")
    cuda = getattr(torch, "cuda", None)
    try:
        return bool(cuda is not None and cuda.is_initialized())
    except Exception:  # a partly imported torch
        return False


def _rss() -> int:
    with open("/proc/self/statm", "rb") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _reuse_loop(env: ExecutionEnv, commands: int, events: int, parent: int,
                limits: TryLimits) -> None:
    """Run tries in this warm process, one at a time; retire when a try leaked. Never returns.

    The worker leads its own process group, so killing a try (timeout, ``kill``) kills the
    worker with it; the executor then forks a replacement. A crash of a try is a crash of
    the worker: its try is reported lost the same way.
    """
    send_line(events, {"child": os.getpid()})  # the process group a kill reaches
    code = CRASHED
    try:
        env.store.warm_up()
        signal.signal(signal.SIGTERM, signal.default_int_handler)
        baseline = _rss()
        for tries in itertools.count(1):
            message = _next_command(commands)
            if message is None or message.get("stop"):
                code = RETIRED
                return
            # A try, once given, outlives a killed scheduler (the next one adopts it through
            # its heartbeat): the death signal is cleared while it runs.
            set_parent_death_signal(0)
            key = _key_of(message)
            snapshot = _Snapshot(_namespaces(env, key))
            apply_environment(message.get("env") or {})
            report = run_try(env, key, message["attempt"])
            leaks = snapshot.restore()
            rss = _rss()
            if rss > baseline + limits.rss_growth:
                leaks.append(f"resident memory grew by {(rss - baseline) >> 20} MB")
            if _cuda_initialized():  # its devices (CUDA_VISIBLE_DEVICES) are fixed now
                leaks.append("CUDA initialized")
            if tries >= limits.max_tries:
                leaks.append(f"{tries} tries run")
            if leaks:
                send_line(events, {"retire": True})
            send_line(events, report)
            if leaks:
                print(f"mlpipe worker {os.getpid()} retires after {key}: {'; '.join(leaks)}",
                      file=sys.stderr, flush=True)
                code = RETIRED
                return
            set_parent_death_signal(signal.SIGKILL)
            if os.getppid() != parent:  # the executor died while the try ran
                code = RETIRED
                return
            send_line(events, {"idle": True})
    except BaseException:  # whatever happens, this process must not return
        with contextlib.suppress(Exception):
            traceback.print_exc(file=sys.stderr)
            sys.stderr.flush()
    finally:
        with contextlib.suppress(Exception):
            env.store.dispose()
        os._exit(code)
