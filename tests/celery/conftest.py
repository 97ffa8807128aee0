"""Real brokers, a real PostgreSQL database per module and real ``mlpipe worker`` processes.

Workers are subprocesses with their own ``MLPIPE_HOME`` each, the same dags folder, database
and artifact root. Queue names get a random prefix (``MLPIPE_TEST_QUEUE_PREFIX``, read by
the test DAG file), so tests sharing a broker never share a queue.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DAGS = Path(__file__).resolve().parent / "dags"
REDIS_URL = os.environ.get("MLPIPE_TEST_REDIS_URL", "redis://127.0.0.1:6379/11")
AMQP_URL = os.environ.get("MLPIPE_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//")
LEASE_S = 2.0


def broker_reachable(url: str) -> str | None:
    """None if the broker answers, else why not."""
    from kombu import Connection

    try:
        with Connection(url, connect_timeout=3) as conn:
            conn.ensure_connection(max_retries=1)
    except Exception as exc:
        return f"{url}: {exc}"
    return None


def require_broker(url: str) -> None:
    reason = broker_reachable(url)
    if reason is not None:
        if os.environ.get("CI"):
            pytest.fail(f"broker unreachable: {reason}")
        pytest.skip(f"broker unreachable: {reason}")


@dataclass
class Cluster:
    """What a module's scheduler side and workers share."""

    database_url: str
    broker_url: str
    prefix: str
    root: Path

    @property
    def artifact_root(self) -> str:
        return (self.root / "artifacts").as_uri()

    def env(self, home: Path, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("MLPIPE_", "MLFLOW_", "AWS_"))}
        env.update({
            "MLPIPE_HOME": str(home), "MLPIPE_DAGS_FOLDER": str(DAGS),
            "MLPIPE_DATABASE_URL": self.database_url,
            "MLPIPE_CELERY_BROKER_URL": self.broker_url,
            "MLPIPE_ARTIFACT_ROOT": self.artifact_root, "MLPIPE_TASK_LEASE_S": str(LEASE_S),
            "MLPIPE_TEST_QUEUE_PREFIX": self.prefix, "MLFLOW_DISABLE_TELEMETRY": "true",
            "MLPIPE_REMOTE_LOG_URI": (self.root / "remote_logs").as_uri(),
            "PYTHONPATH": str(REPO), **extra})
        return env

    def use_here(self, monkeypatch: pytest.MonkeyPatch, **extra: str) -> None:
        """This (the test's) process drives runs: same settings as the workers."""
        home = Path(os.environ["MLPIPE_HOME"])
        for name, value in self.env(home, **extra).items():
            if name.startswith("MLPIPE_"):
                monkeypatch.setenv(name, value)
        monkeypatch.setenv("MLPIPE_EXECUTOR", "celery")


@dataclass
class Worker:
    """One ``mlpipe worker`` subprocess."""

    name: str
    home: Path
    process: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def wait_ready(self, within: float = 90.0) -> None:
        deadline = time.monotonic() + within
        while " ready." not in self.output():
            if self.process.poll() is not None:
                raise AssertionError(f"worker {self.name} exited {self.process.returncode}:\n"
                                     f"{self.output()[-3000:]}")
            assert time.monotonic() < deadline, f"worker {self.name} not ready:\n" \
                                                f"{self.output()[-3000:]}"
            time.sleep(0.1)

    def kill(self) -> None:
        """SIGKILL, as a machine dying would: the worker and the tries it runs."""
        with_suppressed_lookup(lambda: os.killpg(self.process.pid, signal.SIGKILL))
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process.poll() is None:
            with_suppressed_lookup(lambda: os.killpg(self.process.pid, signal.SIGTERM))
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()


def with_suppressed_lookup(action: Callable[[], None]) -> None:
    with contextlib.suppress(ProcessLookupError):
        action()


@pytest.fixture(scope="module")
def module_tmp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("celery")


def make_cluster(broker_url: str, postgres_databases: Callable[[], str],
                 root: Path) -> Cluster:
    require_broker(broker_url)
    return Cluster(postgres_databases(), broker_url, f"mlpipe_test_{uuid.uuid4().hex[:8]}_",
                   root)


@pytest.fixture(scope="module")
def cluster(postgres_databases: Callable[[], str], module_tmp: Path) -> Cluster:
    """Redis (db 11), a fresh PostgreSQL database, migrated once."""
    cluster = make_cluster(REDIS_URL, postgres_databases, module_tmp)
    migrate(cluster)
    return cluster


def migrate(cluster: Cluster) -> None:
    home = cluster.root / "migrate_home"
    home.mkdir(exist_ok=True)
    subprocess.run([sys.executable, "-m", "mlpipe", "db", "migrate"],
                   env=cluster.env(home), check=True, capture_output=True, timeout=120)


@pytest.fixture(scope="module")
def start_worker(module_tmp: Path) -> Iterator[Callable[..., Worker]]:
    """``start(cluster, name, "-q", "gpu", ...)``: a ready worker; all stopped at the end."""
    started: list[Worker] = []

    def start(cluster: Cluster, name: str, *args: str, ready: bool = True,
              **env: str) -> Worker:
        home = module_tmp / f"home_{name}_{uuid.uuid4().hex[:6]}"
        home.mkdir()
        log = home.parent / f"{home.name}.log"
        with open(log, "wb") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "mlpipe", "worker", "--name", f"{name}@test", *args],
                env=cluster.env(home, **env), stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True, cwd=home)
        worker = Worker(name, home, process, log)
        started.append(worker)
        if ready:
            worker.wait_ready()
        return worker

    yield start
    for worker in started:  # all at once: a warm shutdown takes a few seconds each
        if worker.process.poll() is None:
            with_suppressed_lookup(lambda w=worker: os.killpg(w.process.pid, signal.SIGTERM))
    for worker in started:
        worker.stop()
    for worker in started:
        shutil.rmtree(worker.home, ignore_errors=True)
