"""Data-aware scheduling: from an object landing in S3 to the triggered run's first task.

A scheduler (in this process, sequential executor) polls ``s3://bench/in/`` on a moto S3
server on loopback every ``MLPIPE_DATASET_POLL_S`` seconds; a DAG scheduled on that dataset
has one task. Each of ``--uploads`` uploads waits a random fraction of the poll interval
(so uploads fall anywhere in the poll cycle), PUTs one object and measures the time until
the triggered run's first task instance started (read from the store). Measured at 1 s and
5 s; at the default 60 s the figures are computed (uniform wait for the next poll plus the
overhead measured at 1 s), since 20 real uploads would take 20 minutes.

Baseline (same scheduler, same run): a manual run created in the store -> its first task
start (what the scheduler adds without polling). Also reported: the time the loop spends
on dataset work per tick (apply the listing, decide, create the run) against the time a
listing takes on the poller's thread, which the loop never waits for.
Usage: ``python benchmarks/dataset_trigger_latency.py [--uploads 20] [--quick] [--json PATH]``.
"""

from __future__ import annotations

import argparse
import logging
import random
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _report import Figure, add_arguments, emit

from mlpipe.scheduler import dataset_polling
from mlpipe.scheduler.runs import create_dag_run
from mlpipe.scheduler.scheduler_job import Scheduler
from mlpipe.scheduler.service import Engine
from mlpipe.settings import load_settings

DAGS = """
from mlpipe import DAG, Dataset, task

with DAG("on_upload", schedule=[Dataset("s3://bench/in/")]) as dag:
    @task
    def first():
        return 1
    first()

with DAG("by_hand", schedule=None) as manual:
    @task
    def first():
        return 1
    first()
"""
DEFAULT_POLL_S = 60.0


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile of ``values`` (``q`` in [0, 1])."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


class Timed:
    """Durations of calls to a wrapped function, in seconds."""

    def __init__(self, fn: Any) -> None:
        self.fn = fn
        self.seconds: list[float] = []

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        began = time.perf_counter()
        try:
            return self.fn(*args, **kwargs)
        finally:
            self.seconds.append(time.perf_counter() - began)


def _first_start(engine: Engine, dag_id: str, known: int, deadline: float) -> datetime:
    while time.monotonic() < deadline:
        runs = engine.store.list_runs(dag_id)
        if len(runs) > known:
            tis = engine.store.list_tis(dag_id, runs[-1].run_id)
            if tis and tis[0].start_date is not None:
                return tis[0].start_date
        time.sleep(0.005)
    raise AssertionError(f"no run of {dag_id} started in time")


def measure(tmp: Path, endpoint: str, poll: float, uploads: int) -> dict[str, Any]:
    """Latencies (s) of ``uploads`` uploads and of as many manual runs, at ``poll``."""
    import os

    folder = tmp / f"dags_{poll:g}"
    folder.mkdir()
    (folder / "dags.py").write_text(DAGS)
    os.environ["MLPIPE_CONN_AWS_DEFAULT"] = (f"s3://AKIABENCH:x@/?endpoint_url={endpoint}"
                                             "&region_name=us-east-1")
    engine = Engine.from_settings(load_settings(home=tmp / f"home_{poll:g}",
                                                dags_folder=folder, executor="sequential",
                                                dataset_poll_s=poll))
    job = Scheduler(engine, scan_interval=30.0, lease=timedelta(seconds=30))
    loop_work = Timed(job._create_dataset_runs)
    job._create_dataset_runs = loop_work  # type: ignore[method-assign]
    listing = Timed(dataset_polling.list_s3_dataset)
    dataset_polling.list_s3_dataset = listing  # type: ignore[assignment]
    stop = threading.Event()
    thread = threading.Thread(target=job.run, kwargs={"until": lambda _s: stop.is_set()})
    thread.start()
    client = _client(endpoint)
    try:
        while not listing.seconds:  # the baseline listing
            time.sleep(0.01)
        time.sleep(0.2)
        landed, manual = [], []
        rng = random.Random(0)
        for i in range(uploads):
            time.sleep(rng.uniform(0, poll))
            known = len(engine.store.list_runs("on_upload"))
            at = datetime.now(UTC)
            client.put_object(Bucket="bench", Key=f"in/{poll:g}/{i}.bin", Body=b"x")
            started = _first_start(engine, "on_upload", known, time.monotonic() + poll * 4 + 30)
            landed.append((started - at).total_seconds())
            known = len(engine.store.list_runs("by_hand"))
            at = datetime.now(UTC)
            create_dag_run(engine.store, job.watcher.bag.get_dag("by_hand"),
                           logical_date=at, run_id=f"manual__{poll:g}_{i}")
            started = _first_start(engine, "by_hand", known, time.monotonic() + 30)
            manual.append((started - at).total_seconds())
    finally:
        stop.set()
        thread.join(60)
        dataset_polling.list_s3_dataset = listing.fn
    return {"landed": landed, "manual": manual, "loop_work": loop_work.seconds,
            "listing": listing.seconds}


def _client(endpoint: str) -> Any:
    from mlpipe.s3.client import make_client
    from mlpipe.s3.credentials import S3Credentials

    return make_client(S3Credentials(aws_access_key_id="AKIABENCH", aws_secret_access_key="x",
                                     region_name="us-east-1", endpoint_url=endpoint))


def main(argv: list[str] | None = None) -> list[Figure]:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--uploads", type=int, default=20)
    add_arguments(parser)
    args = parser.parse_args(argv)
    polls = [1.0, 5.0]
    if args.quick:
        args.uploads, polls = 3, [0.5]
    logging.getLogger().setLevel(logging.WARNING)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's request log
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{server._server.server_port}"
    _client(endpoint).create_bucket(Bucket="bench")
    figures: list[Figure] = []
    overhead = 0.0
    try:
        with tempfile.TemporaryDirectory() as name:
            for poll in polls:
                row = measure(Path(name), endpoint, poll, args.uploads)
                landed, manual = row["landed"], row["manual"]
                base = statistics.median(manual)
                workload = f"object lands -> first task starts (poll {poll:g} s)"
                figures += [
                    Figure(workload, "p50", "s", percentile(landed, 0.5), base,
                           "manual run -> first task (p50)"),
                    Figure(workload, "p95", "s", percentile(landed, 0.95),
                           percentile(manual, 0.95), "manual run -> first task (p95)"),
                ]
                ticks = row["loop_work"]
                workload = f"dataset work on the scheduler loop per tick (poll {poll:g} s)"
                figures += [
                    Figure(workload, "p95", "ms", percentile(ticks, 0.95) * 1000,
                           statistics.median(row["listing"]) * 1000,
                           "one listing on the poller thread (p50)"),
                    Figure(workload, "max", "ms", max(ticks) * 1000),
                ]
                if poll == polls[0]:  # what the scheduler adds beyond waiting for the poll
                    overhead = max(0.0, statistics.median(landed) - poll / 2)
    finally:
        server.stop()
    workload = f"object lands -> first task starts (poll {DEFAULT_POLL_S:g} s, computed)"
    figures += [
        Figure(workload, "p50", "s", DEFAULT_POLL_S * 0.5 + overhead,
               target="computed: uniform wait for the next poll + overhead at the first poll"),
        Figure(workload, "p95", "s", DEFAULT_POLL_S * 0.95 + overhead,
               target="computed"),
    ]
    emit("dataset_trigger_latency", figures, args.json)
    return figures


if __name__ == "__main__":
    main()
