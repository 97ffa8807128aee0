"""The Celery executor against the local executor, on the same PostgreSQL server.

Workloads (no-op Python tasks):
- fan-out: 1 -> ``--fanout`` -> 1; wall time of the run and the per-task cost (wall / tasks);
- chain: ``--chain`` tasks one after another; the hand-off, from a task's end to its
  dependent's start (both read from the metadata database), p50 and p95.

Celery: ``--workers`` real ``mlpipe worker`` processes (``--concurrency`` slots each) on the
Redis broker ``--broker``, each with its own MLPIPE_HOME; the run is driven by this process.
Baseline: the local executor (forked children, ``parallelism`` = all the workers' slots),
measured in the same run against a database of the same server. Targets (issue 15): per-task
cost <= 10 ms and hand-off p95 <= 50 ms on Celery.
Usage: ``python benchmarks/celery_fanout.py [--fanout 500] [--chain 30] [--workers 2]
[--concurrency 2] [--quick] [--json PATH]``. Needs PostgreSQL (``MLPIPE_TEST_POSTGRES_URL``,
default ``postgresql+psycopg://postgres@127.0.0.1:5432/test``) and Redis.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import itertools

from _report import Figure, add_arguments, emit

REPO = Path(__file__).resolve().parents[1]
POSTGRES_URL = os.environ.get("MLPIPE_TEST_POSTGRES_URL",
                              "postgresql+psycopg://postgres@127.0.0.1:5432/test")
DAG_FILE = '''
import os
from mlpipe import DAG
from mlpipe.operators import PythonOperator

Q = os.environ.get("MLPIPE_BENCH_QUEUE", "default")

def noop():
    return None

with DAG("bench_fanout") as fanout:
    source = PythonOperator(task_id="source", python_callable=noop, queue=Q)
    join = PythonOperator(task_id="join", python_callable=noop, queue=Q)
    for i in range({fanout}):
        source >> PythonOperator(task_id=f"b{{i}}", python_callable=noop, queue=Q) >> join

with DAG("bench_chain") as chain:
    previous = None
    for i in range({chain}):
        step = PythonOperator(task_id=f"s{{i}}", python_callable=noop, queue=Q)
        if previous is not None:
            previous >> step
        previous = step
'''


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def new_database() -> tuple[str, str]:
    from sqlalchemy import create_engine, text

    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    name = f"mlpipe_bench_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return admin.url.set(database=name).render_as_string(hide_password=False), name


def drop_database(name: str) -> None:
    from sqlalchemy import create_engine, text

    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def environment(tmp: Path, home: Path, database: str, broker: str, queue: str,
                executor: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLPIPE_", "MLFLOW_"))}
    env.update({"MLPIPE_HOME": str(home), "MLPIPE_DAGS_FOLDER": str(tmp / "dags"),
                "MLPIPE_DATABASE_URL": database, "MLPIPE_CELERY_BROKER_URL": broker,
                "MLPIPE_ARTIFACT_ROOT": (tmp / "artifacts").as_uri(),
                "MLPIPE_EXECUTOR": executor, "MLPIPE_BENCH_QUEUE": queue,
                "MLFLOW_DISABLE_TELEMETRY": "true", "PYTHONPATH": str(REPO)})
    return env


def start_workers(tmp: Path, count: int, concurrency: int, env_of: dict[str, str]
                  ) -> list[subprocess.Popen[bytes]]:
    workers = []
    for i in range(count):
        home = tmp / f"worker_{i}"
        home.mkdir()
        log = open(tmp / f"worker_{i}.log", "wb")  # noqa: SIM115 - closed with the process
        env = {**env_of, "MLPIPE_HOME": str(home)}
        workers.append(subprocess.Popen(
            [sys.executable, "-m", "mlpipe", "worker", "-q", env["MLPIPE_BENCH_QUEUE"],
             "-c", str(concurrency), "--name", f"bench{i}@{uuid.uuid4().hex[:6]}"],
            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
    deadline = time.monotonic() + 120
    for i, process in enumerate(workers):
        while b" ready." not in (tmp / f"worker_{i}.log").read_bytes():
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"worker {i} did not start:\n"
                                 f"{(tmp / f'worker_{i}.log').read_text()[-2000:]}")
            time.sleep(0.1)
    return workers


def stop_workers(workers: list[subprocess.Popen[bytes]]) -> None:
    for process in workers:
        os.killpg(process.pid, signal.SIGTERM)
    for process in workers:
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


def run_both(env: dict[str, str], fanout: int) -> dict[str, float]:
    """Run both DAGs with the executor ``env`` names; wall time, per task, hand-offs."""
    os.environ.update(env)
    from mlpipe.scheduler.service import Engine
    from mlpipe.settings import load_settings

    engine = Engine.from_settings(load_settings())
    try:
        executor = engine.make_executor()
        try:
            figures: dict[str, float] = {}
            for dag_id in ("bench_chain", "bench_fanout"):  # the chain warms the workers
                dag = engine.get_dag(dag_id)
                run_id = engine.trigger(dag).run_id
                started = time.perf_counter()
                state = engine.run(dag, run_id, executor=executor).state.value
                wall = time.perf_counter() - started
                if state != "success":
                    raise SystemExit(f"{dag_id} ended {state} with {env['MLPIPE_EXECUTOR']}")
                records = {r.task_id: r for r in engine.store.list_tis(dag_id, run_id)}
                if dag_id == "bench_fanout":
                    figures["wall_s"] = wall
                    figures["per_task_ms"] = wall / (fanout + 2) * 1000
                    last = max(r.end_date for t, r in records.items() if t.startswith("b"))
                    figures["join_handoff_ms"] = _ms(records["join"].start_date, last)
                else:
                    steps = sorted(records, key=lambda t: int(t[1:]))
                    hand = [_ms(records[b].start_date, records[a].end_date)
                            for a, b in itertools.pairwise(steps)]
                    figures["handoff_p50_ms"] = statistics.median(hand)
                    figures["handoff_p95_ms"] = percentile(hand, 0.95)
            return figures
        finally:
            executor.shutdown()
    finally:
        engine.store.dispose()


def _ms(later: datetime, earlier: datetime) -> float:
    return (later - earlier).total_seconds() * 1000


def main(argv: list[str] | None = None) -> list[Figure]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fanout", type=int, default=500)
    parser.add_argument("--chain", type=int, default=30)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--broker", default=os.environ.get("MLPIPE_BENCH_BROKER_URL",
                                                           "redis://127.0.0.1:6379/12"))
    add_arguments(parser)
    args = parser.parse_args(argv)
    if args.quick:
        args.fanout, args.chain = 20, 5
    logging.getLogger("mlpipe").setLevel(logging.WARNING)
    saved = dict(os.environ)
    with tempfile.TemporaryDirectory(prefix="mlpipe_bench_celery_") as name:
        tmp = Path(name)
        (tmp / "dags").mkdir()
        (tmp / "dags" / "bench.py").write_text(DAG_FILE.format(fanout=args.fanout,
                                                              chain=args.chain))
        queue = f"mlpipe_bench_{uuid.uuid4().hex[:8]}"
        results: dict[str, dict[str, float]] = {}
        for executor in ("celery", "local"):
            url, db = new_database()
            home = tmp / f"driver_{executor}"
            home.mkdir()
            env = environment(tmp, home, url, args.broker, queue, executor)
            env["MLPIPE_PARALLELISM"] = str(args.workers * args.concurrency)
            subprocess.run([sys.executable, "-m", "mlpipe", "db", "migrate"], env=env,
                           check=True, capture_output=True)
            workers = (start_workers(tmp, args.workers, args.concurrency, env)
                       if executor == "celery" else [])
            try:
                results[executor] = run_both(env, args.fanout)
            finally:
                stop_workers(workers)
                os.environ.clear()
                os.environ.update(saved)
                drop_database(db)
    celery, local = results["celery"], results["local"]
    slots = f"{args.workers} workers x {args.concurrency}"
    label = f"local executor, parallelism {args.workers * args.concurrency}"
    figures = [
        Figure(f"fan-out 1->{args.fanout}->1, celery {slots}", "wall", "s",
               celery["wall_s"], local["wall_s"], label),
        Figure(f"fan-out 1->{args.fanout}->1, celery {slots}", "per-task cost", "ms",
               celery["per_task_ms"], local["per_task_ms"], label, target="<= 10 ms"),
        Figure(f"fan-out 1->{args.fanout}->1, celery {slots}", "last branch -> join", "ms",
               celery["join_handoff_ms"], local["join_handoff_ms"], label),
        Figure(f"chain of {args.chain}, celery {slots}", "hand-off p50", "ms",
               celery["handoff_p50_ms"], local["handoff_p50_ms"], label),
        Figure(f"chain of {args.chain}, celery {slots}", "hand-off p95", "ms",
               celery["handoff_p95_ms"], local["handoff_p95_ms"], label, target="<= 50 ms"),
    ]
    emit("celery_fanout: the Celery executor vs the local executor (PostgreSQL, Redis)",
         figures, args.json)
    return figures


if __name__ == "__main__":
    main()
