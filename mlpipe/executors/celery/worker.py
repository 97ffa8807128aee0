"""The worker's side: take a "run this try" message, hold its resources, run it in a fork.

``mlpipe worker`` runs a Celery worker with a thread pool of ``concurrency`` slots. Each
message goes through ``TryWorker.handle`` on one of those threads:

1. the message is checked (shape, sizes); a malformed one is dropped with a log line;
2. the row must be ``queued`` for exactly the try the message names, else the message is a
   duplicate or stale (delivered twice, or after the try was declared lost): nothing runs;
3. the task's ``resources`` must fit this worker's declared slots; a request that never can
   fails the try at once with one line (it would otherwise wait forever);
4. the slots are held (waiting for them if others hold them) and the try runs in a child
   forked from the worker (DAGs parsed, mlpipe imported: a try starts in milliseconds),
   through ``TryRunner.run``, which claims it by compare-and-set, beats its heartbeat and
   records its end. The child sees only its GPUs (``CUDA_VISIBLE_DEVICES``), leads its own
   process group, and dies with the worker (``PR_SET_PDEATHSIG``): a worker killed mid-try
   leaves a row without heartbeat, which its driver retries or fails after one lease.

When a try of a run starts, a *spare* child is forked for that run: it opens its database
connections and waits (up to ``SPARE_IDLE`` s) for the order of the run's next try, so the
fork and the connection are off that try's path (the local executor's standbys, per run).
"""

from __future__ import annotations

import contextlib
import gc
import json
import logging
import os
import select
import signal
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlpipe.core.states import TaskInstanceState as S
from mlpipe.executors.celery.app import RUN_TRY, TryMessage, make_app
from mlpipe.executors.process_watch import set_parent_death_signal
from mlpipe.executors.resources import Grant, SlotAllocator
from mlpipe.runtime.dagbag import load_dagbag, load_one

if TYPE_CHECKING:
    from mlpipe.core.dag import DAG
    from mlpipe.runtime.models import DagRun
    from mlpipe.runtime.try_runner import TryRunner
    from mlpipe.store.entities import TIKey

log = logging.getLogger("mlpipe.worker")

#: exit code of a child whose claim failed (another process took the try first)
NOT_CLAIMED = 3
#: exit code of a spare that was never given a try
RETIRED = 4
#: spare children (forked and connected ahead of a try) a worker keeps
MAX_SPARES = 2
#: seconds a spare waits for a try before it exits
SPARE_IDLE = 10.0
#: runs a worker keeps loaded for the tries that follow
MAX_CACHED_RUNS = 64
#: seconds a try may outlive its ``execution_timeout`` before its process group is killed
KILL_GRACE = 30.0


class FreshDags:
    """DAGs by id for a long-lived worker: a DAG is parsed again when its file changed."""

    def __init__(self, folder: Path, *, parse_timeout: float | None = None) -> None:
        self.folder = folder
        self.parse_timeout = parse_timeout
        self._dags: dict[str, tuple[DAG, int]] = {}
        self._lock = threading.Lock()

    def __call__(self, dag_id: str) -> DAG:
        with self._lock:
            cached = self._dags.get(dag_id)
            if cached is not None:
                dag, mtime = cached
                if _mtime(dag.fileloc) == mtime:
                    return dag
                again = load_one(self.folder, Path(dag.fileloc), dag_id,
                                 parse_timeout=self.parse_timeout)
                if again is not None:
                    self._dags[dag_id] = (again, _mtime(again.fileloc))
                    return again
            bag = load_dagbag(self.folder, parse_timeout=self.parse_timeout)
            for found in bag.dags.values():
                self._dags[found.dag_id] = (found, _mtime(found.fileloc))
            return bag.get_dag(dag_id)  # names the known ids when it is not there


def _mtime(path: str) -> int:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return -1


@dataclass
class TryWorker:
    """Runs the tries a Celery worker receives (see the module docstring)."""

    runner: TryRunner
    slots: SlotAllocator
    name: str = field(default_factory=lambda: f"mlpipe@{socket.gethostname()}")
    queues: tuple[str, ...] = ("default",)
    #: runs read for earlier tries, by (dag_id, run_id): a child starts with its run loaded
    _runs: dict[tuple[str, str], DagRun] = field(default_factory=dict, repr=False)
    #: at most one spare child per run, ``MAX_SPARES`` in all
    _spares: dict[tuple[str, str], _Spare] = field(default_factory=dict, repr=False)
    _spare_lock: threading.RLock = field(default_factory=threading.RLock, repr=False)
    #: this process's ends of the spares' pipes: every forked child closes them, so a
    #: spare sees the end of its orders and the worker the end of its result
    _pipe_fds: set[int] = field(default_factory=set, repr=False)

    def _run_of(self, key: TIKey, dag: DAG) -> DagRun:
        """The run ``key`` belongs to, read once per run (again when its DAG was reloaded)."""
        cached = self._runs.get((key.dag_id, key.run_id))
        if cached is not None and cached.dag is dag:
            return cached
        run = self.runner.load_run(key)
        if len(self._runs) >= MAX_CACHED_RUNS:
            self._runs.pop(next(iter(self._runs)), None)
        self._runs[(key.dag_id, key.run_id)] = run
        return run

    def handle(self, args: Any) -> str:
        """Run the try a message names; returns what happened (``ran``, ``ignored``...)."""
        try:
            message = TryMessage.parse(args)
        except ValueError as exc:
            log.error("dropped a malformed %s message: %s", RUN_TRY, exc)
            return "malformed"
        key = message.key
        store = self.runner.store
        record = store.get_ti(key)
        if record is None or record.state != S.QUEUED or \
                record.try_number + 1 != message.try_number:
            state = record.state if record is not None else "missing"
            tries = record.try_number if record is not None else 0
            log.info("%s try %d: ignored (the row is %s after try %d: a duplicate or stale "
                     "message)", key, message.try_number, state, tries)
            return "ignored"
        try:
            dag = self.runner.dag_provider(key.dag_id)
            task = dag.get_task(key.task_id)
            run = self._run_of(key, dag)
            refusal = self.slots.refusal(task.resources or {})
        except Exception as exc:  # a DAG missing or broken on this worker
            refusal = f"cannot load the task on this worker: {exc}"
        if refusal is not None:
            reason = f"worker {self.name}: {refusal}"
            log.error("%s: %s; failing it", key, reason)
            store.transition(key, [S.QUEUED], S.FAILED, error=reason,
                             end_date=datetime.now(UTC))
            return "refused"
        grant = self.slots.acquire(task.resources or {})
        assert grant is not None  # no timeout: it waited until the slots were free
        try:
            timeout = task.execution_timeout.total_seconds() if task.execution_timeout else None
            code = self._run_child(message, grant, timeout, run)
        finally:
            self.slots.release(grant)
        if code == NOT_CLAIMED:
            log.info("%s try %d: ignored (another delivery claimed it first)", key,
                     message.try_number)
            return "ignored"
        return "ran"

    def _run_child(self, message: TryMessage, grant: Grant, timeout: float | None,
                   run: DagRun) -> int:
        spare = self._take_spare(run)
        if spare is not None:
            code = self._run_in_spare(spare, message, grant, timeout)
            if code is not None:
                return code
            record = self.runner.store.get_ti(message.key)
            if record is None or record.state != S.QUEUED:
                return 1  # it claimed the try and died: the lease takes it from here
        pid = self._fork(lambda: _child_main(self._runner_for(run), message, grant, run))
        self._make_spare(run)  # ready for the next try of this run, off that try's path
        log.info("%s try %d: running in process %d%s", message.key, message.try_number, pid,
                 f" on GPUs {list(grant.gpus)}" if grant.gpus else "")
        timer = None
        if timeout is not None:
            timer = threading.Timer(timeout + KILL_GRACE, _kill_group, (pid,))
            timer.daemon = True
            timer.start()
        try:
            _, status = os.waitpid(pid, 0)
        finally:
            if timer is not None:
                timer.cancel()
        return os.waitstatus_to_exitcode(status)


    # -- spares: children forked and connected ahead of the next try of a run -------------

    def _runner_for(self, run: DagRun) -> TryRunner:
        # the DAG loaded here: the provider's lock may be held by another thread at the fork
        return replace(self.runner, dag_provider=lambda _: run.dag)

    def _fork(self, child: Callable[[], None]) -> int:
        with self._spare_lock:
            gc.freeze()  # the child must not touch (copy) the pages of what it inherits
            try:
                pid = os.fork()
            finally:
                gc.unfreeze()
            if pid == 0:  # the child: never returns
                for fd in self._pipe_fds:
                    with contextlib.suppress(OSError):
                        os.close(fd)
                child()
                os._exit(1)
        return pid

    def _close(self, fd: int) -> None:
        with self._spare_lock:
            self._pipe_fds.discard(fd)
        with contextlib.suppress(OSError):
            os.close(fd)

    def _take_spare(self, run: DagRun) -> _Spare | None:
        with self._spare_lock:
            spare = self._spares.pop((run.dag_id, run.run_id), None)
        if spare is not None and spare.run is not run:  # its DAG was reloaded since
            self._retire(spare)
            return None
        return spare

    def _make_spare(self, run: DagRun) -> None:
        with self._spare_lock:
            if (run.dag_id, run.run_id) in self._spares:
                return
            while len(self._spares) >= MAX_SPARES:
                self._retire(self._spares.pop(next(iter(self._spares))))
            orders_r, orders_w = os.pipe()
            result_r, result_w = os.pipe()
            self._pipe_fds.update((orders_w, result_r))
            runner = self._runner_for(run)
            pid = self._fork(lambda: _spare_main(runner, run, orders_r, result_w))
            os.close(orders_r)
            os.close(result_w)
            spare = _Spare(pid, orders_w, result_r, run)
            self._spares[(run.dag_id, run.run_id)] = spare
        threading.Thread(target=_reap, args=(pid,), daemon=True).start()

    def _run_in_spare(self, spare: _Spare, message: TryMessage, grant: Grant,
                      timeout: float | None) -> int | None:
        """The try's exit code, or None if the spare was gone before it took the try."""
        order = json.dumps([message.args(), grant.env()]).encode()
        try:
            os.write(spare.orders, order)
        except OSError:
            self._retire(spare)
            return None
        self._close(spare.orders)
        self._make_spare(spare.run)  # ready for the next try of this run
        log.info("%s try %d: running in process %d%s", message.key, message.try_number,
                 spare.pid, f" on GPUs {list(grant.gpus)}" if grant.gpus else "")
        timer = None
        if timeout is not None:
            timer = threading.Timer(timeout + KILL_GRACE, _kill_group, (spare.pid,))
            timer.daemon = True
            timer.start()
        try:
            with os.fdopen(spare.result, "rb") as result:
                code = result.read()
        finally:
            with self._spare_lock:
                self._pipe_fds.discard(spare.result)
            if timer is not None:
                timer.cancel()
        return code[0] if code else None

    def _retire(self, spare: _Spare) -> None:
        self._close(spare.orders)
        self._close(spare.result)


@dataclass(eq=False)
class _Spare:
    """A child forked for a run, connected to the database, waiting for a try's order."""

    pid: int
    orders: int
    result: int
    run: DagRun


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)


def _become_try_process(runner: TryRunner) -> None:
    """What a forked child does first: its own process group, dying with its worker, the
    default signals, no log handlers of the worker, database connections of its own."""
    os.setsid()  # own process group: a kill reaches everything the try starts
    parent = os.getppid()
    set_parent_death_signal(signal.SIGKILL)  # a worker killed takes its tries along
    if os.getppid() != parent:
        os._exit(1)
    for signum in (signal.SIGINT, signal.SIGQUIT, signal.SIGUSR1, signal.SIGHUP):
        signal.signal(signum, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    # The try's output belongs in its log (secrets masked), not in the worker's log.
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    runner.store.engine.dispose(close=False)  # the worker's pooled connections stay its own


def _run_try(runner: TryRunner, key: TIKey, env: dict[str, str], run: DagRun) -> int:
    os.environ.update(env)
    outcome = runner.run(key, run=run,
                         on_heartbeat_lost=lambda: os.kill(os.getpid(), signal.SIGTERM))
    runner.store.dispose()
    return 0 if outcome is not None else NOT_CLAIMED


def _spare_main(runner: TryRunner, run: DagRun, orders: int, result: int) -> None:
    """A spare child: get ready, wait (up to ``SPARE_IDLE`` s) for one order, run it."""
    code = 1
    try:
        _become_try_process(runner)
        runner.store.warm_up()
        ready, _, _ = select.select([orders], [], [], SPARE_IDLE)
        data = b""
        if ready:
            while chunk := os.read(orders, 65536):
                data += chunk
        if not data:  # retired, or idle too long: the worker forks a fresh one if needed
            os._exit(RETIRED)
        args, env = json.loads(data)
        code = _run_try(runner, TryMessage.parse(args).key, env, run)
        os.write(result, bytes([code]))
    except BaseException:
        with contextlib.suppress(Exception):
            log.exception("a spare try process failed")
    finally:
        os._exit(code)


def _child_main(runner: TryRunner, message: TryMessage, grant: Grant, run: DagRun) -> None:
    """The forked child: run one try, then exit (never returns)."""
    code = 1
    try:
        _become_try_process(runner)
        code = _run_try(runner, message.key, grant.env(), run)
    except BaseException:
        with contextlib.suppress(Exception):
            log.exception("try %s failed to run", message.key)
    finally:
        with contextlib.suppress(Exception):
            import sys

            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


def _kill_group(pid: int) -> None:
    log.error("process %d outlived its execution_timeout by %g s; killing it", pid, KILL_GRACE)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)


def run_worker(worker: TryWorker, *, broker_url: str, concurrency: int, lease_s: float,
               loglevel: str = "INFO") -> None:
    """Run the Celery worker until it is stopped (SIGTERM: warm shutdown, tries finish)."""
    from mlpipe.executors.celery.executor import visibility_timeout

    app = make_app(broker_url, visibility_timeout=visibility_timeout(lease_s))
    app.conf.worker_hijack_root_logger = True

    def run_try(*args: Any) -> str:
        return worker.handle(list(args))

    app.task(name=RUN_TRY, acks_late=True, reject_on_worker_lost=True,
             ignore_result=True)(run_try)
    log.info("worker %s: queues %s, concurrency %d, %s", worker.name, list(worker.queues),
             concurrency, worker.slots.describe())
    app.worker_main(argv=[
        "worker", "--pool", "threads", "--concurrency", str(concurrency),
        "--queues", ",".join(worker.queues), "--hostname", worker.name,
        "--loglevel", loglevel, "--without-mingle", "--without-gossip", "-O", "fair",
    ])
