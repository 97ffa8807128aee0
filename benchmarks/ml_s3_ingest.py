"""S3 ingest: ``S3DownloadOperator`` against ``aws s3 sync``, on a real local S3 endpoint.

moto's ``ThreadedMotoServer`` (its own process, 127.0.0.1) holds ``--objects`` real images
(64x64 PNG crops of scikit-learn's sample photos, two classes). Everything runs twice: on
the server directly, and through a loopback proxy that delays every request by
``--latency-ms`` (20; ``_latency_proxy.py``, its own process), where a client's
parallelism matters as it does on real S3. Per repeat, each on a fresh destination folder:
- mlpipe: a DAG with one ``S3DownloadOperator`` run through ``dag.test()``;
- mlpipe, no-change re-run: the same DAG again on the same folder (``incremental=True``,
  every ETag unchanged, so nothing is fetched);
- baseline: ``aws s3 sync s3://bucket/prefix/ DIR --endpoint-url ...`` (awscli 1.x in its own
  venv, ``.peers/awscli``; skipped with a printed line if it is not installed);
- floor: one listing and one plain boto3 ``get_object`` per object on as many threads as
  the operator uses (``max_workers``, 16), the same client settings, what any client needs
  at least on this endpoint (moto's request handling is the bottleneck without latency);
- the server's CPU time per object for mlpipe and awscli (from ``/proc``: how many requests
  each makes, in effect).
Checks: every object downloaded, the re-run skipped them all, every tree byte-identical to
what was uploaded. Reported: medians of wall time and their ratios.
Usage: ``python benchmarks/ml_s3_ingest.py [--objects 2000] [--repeat 3] [--latency-ms 20]
[--quick] [--json PATH]``.
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _latency_proxy import latency_proxy
from _ml_data import (
    ACCESS_KEY,
    REGION,
    SECRET_KEY,
    MotoServer,
    conn_uri,
    median,
    moto_server,
    photo_crops,
    s3_client,
    scratch_env,
    timed,
    tree_bytes,
)
from _report import Figure, add_arguments, emit

from mlpipe import DAG
from mlpipe.operators import S3DownloadOperator

BUCKET = "bench-ingest"
PREFIX = "images/"
AWS = Path(__file__).resolve().parents[1] / ".peers" / "awscli" / "bin" / "aws"
SYNC_TARGET = ">= 1.5x"
RERUN_TARGET = ">= 20x"
FLOOR_TARGET = ">= 0.9x"
WORKERS = 16  # S3DownloadOperator's default max_workers


def seed_bucket(endpoint: str, count: int) -> dict[str, bytes]:
    """Upload ``count`` PNG crops as ``images/<class>/<n>.png``; returns relpath -> bytes."""
    objects: dict[str, bytes] = {}
    for name, index, image in photo_crops(count, 64, seed=6):
        buffer = io.BytesIO()
        image.save(buffer, "PNG")
        objects[f"{name}/{index:05d}.png"] = buffer.getvalue()
    client = s3_client(endpoint)
    client.create_bucket(Bucket=BUCKET)
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda item: client.put_object(Bucket=BUCKET, Key=PREFIX + item[0],
                                                     Body=item[1]), objects.items()))
    return objects


def run_mlpipe(dest: Path) -> dict[str, Any]:
    """One ``dag.test()`` of a one-task DAG; returns the download's counts (from XCom)."""
    with DAG("bench_s3_ingest") as dag:
        S3DownloadOperator(task_id="download", source=f"s3://{BUCKET}/{PREFIX}", dest=str(dest),
                           incremental=True)
    run = dag.test()
    ti = run.get_task_instance("download")
    if run.state != "success" or ti is None:
        raise RuntimeError(f"the download failed: {ti.error if ti else run.state}")
    extra: dict[str, Any] = ti.xcom_pull().extra
    return extra


def run_awscli(endpoint: str, dest: Path) -> None:
    """``aws s3 sync`` of the prefix into ``dest`` (fails loudly on any error)."""
    env = {**os.environ, "AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
           "AWS_DEFAULT_REGION": REGION, "AWS_CONFIG_FILE": os.devnull,
           "AWS_SHARED_CREDENTIALS_FILE": os.devnull}
    subprocess.run([str(AWS), "s3", "sync", f"s3://{BUCKET}/{PREFIX}", str(dest),
                    "--endpoint-url", endpoint, "--only-show-errors"],
                   env=env, check=True, stdout=subprocess.DEVNULL)


def check_tree(dest: Path, expected: dict[str, bytes], what: str, *,
               exclude: tuple[str, ...] = ()) -> None:
    """Raise unless ``dest`` holds exactly the uploaded files, byte for byte."""
    got = tree_bytes(dest, exclude=exclude)
    if got != expected:
        missing = sorted(set(expected) - set(got))[:3]
        differ = sorted(k for k in expected if k in got and got[k] != expected[k])[:3]
        raise AssertionError(f"{what}: {len(got)} files, expected {len(expected)}; "
                             f"missing {missing}, different {differ}")


def get_only(endpoint: str, dest: Path, workers: int = WORKERS) -> None:
    """The floor on this server: list, then one plain GET per object, ``workers`` threads."""
    from botocore.config import Config

    client = s3_client(endpoint, config=Config(max_pool_connections=workers))
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=PREFIX)
    keys = [obj["Key"] for page in pages for obj in page.get("Contents", [])]

    def get(key: str) -> None:
        target = dest / key[len(PREFIX):]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(client.get_object(Bucket=BUCKET, Key=key)["Body"].read())

    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(get, keys))


class Sampler:
    """Wall time and the server's CPU time of each measured call, by name."""

    def __init__(self, server: MotoServer) -> None:
        self.server = server
        self.wall: dict[str, list[float]] = {}
        self.server_cpu: dict[str, list[float]] = {}

    def measure(self, name: str, fn: Callable[[], Any]) -> Any:
        cpu = self.server.cpu_seconds()
        seconds, result = timed(fn)
        after = self.server.cpu_seconds()
        self.wall.setdefault(name, []).append(seconds)
        if cpu is not None and after is not None:
            self.server_cpu.setdefault(name, []).append(after - cpu)
        return result

    def cpu_ms_per_object(self, name: str, count: int) -> float | None:
        values = self.server_cpu.get(name)
        return median(values) * 1000 / count if values else None


def main(argv: list[str] | None = None) -> list[Figure]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--latency-ms", type=float, default=20.0)
    add_arguments(parser)
    args = parser.parse_args(argv)
    count, repeat = (min(args.objects, 100), 1) if args.quick else (args.objects, args.repeat)
    have_aws = AWS.is_file()
    if not have_aws:
        print(f"awscli not found at {AWS}: skipping the aws s3 sync comparison "
              "(benchmarks/peers/setup.sh installs it)")
    figures: list[Figure] = []
    with tempfile.TemporaryDirectory(prefix="mlpipe-bench-s3-") as tmp, \
            moto_server() as server, \
            latency_proxy(server.endpoint, args.latency_ms) as slow_endpoint:
        expected = seed_bucket(server.endpoint, count)
        for latency, endpoint in ((None, server.endpoint), (args.latency_ms, slow_endpoint)):
            with scratch_env(MLPIPE_HOME=str(Path(tmp) / "home"),
                             MLPIPE_CONN_AWS_DEFAULT=conn_uri(endpoint),
                             MLFLOW_DISABLE_TELEMETRY="true"):
                sample = measure_endpoint(server, endpoint, Path(tmp), expected, repeat,
                                          have_aws)
            figures += report(sample, count, latency)
    emit("ml_s3_ingest", figures, args.json)
    return figures


def measure_endpoint(server: MotoServer, endpoint: str, tmp: Path,
                     expected: dict[str, bytes], repeat: int, have_aws: bool) -> Sampler:
    """``repeat`` rounds of mlpipe (first run and re-run), aws s3 sync and the floor."""
    count = len(expected)
    sample = Sampler(server)
    for i in range(repeat):
        ours, theirs, floor = (tmp / f"{name}-{i}" for name in ("mlpipe", "awscli", "get-only"))

        def mlpipe_pair(ours: Path = ours) -> None:
            counts = sample.measure("first", lambda: run_mlpipe(ours))
            if counts["downloaded"] != count:
                raise AssertionError(f"first run downloaded {counts}, expected {count}")
            counts = sample.measure("rerun", lambda: run_mlpipe(ours))
            if counts["downloaded"] != 0 or counts["skipped"] != count:
                raise AssertionError(f"no-change re-run fetched objects: {counts}")
            check_tree(ours, expected, "S3DownloadOperator", exclude=("manifest.json",))

        def awscli_run(theirs: Path = theirs) -> None:
            sample.measure("sync", lambda: run_awscli(endpoint, theirs))
            check_tree(theirs, expected, "aws s3 sync")

        def floor_run(floor: Path = floor) -> None:
            sample.measure("floor", lambda: get_only(endpoint, floor))
            check_tree(floor, expected, "boto3 GETs")

        # alternate the order so no side always runs first on the server
        steps = [mlpipe_pair, *([awscli_run] if have_aws else []), floor_run]
        for step in steps if i % 2 == 0 else steps[::-1]:
            step()
        for folder in (ours, theirs, floor):
            shutil.rmtree(folder, ignore_errors=True)
    return sample


def report(sample: Sampler, count: int, latency_ms: float | None = None) -> list[Figure]:
    """The figures of one endpoint (medians over the repeats); with ``latency_ms`` the
    metrics say the latency (one figure per metric over the whole benchmark)."""
    wall = {name: median(values) for name, values in sample.wall.items()}
    sync = wall.get("sync")
    aws = "aws s3 sync" if sync else ""
    workload = f"S3 ingest, {count} PNG objects (moto server)"
    at = f"{latency_ms:g} ms latency: " if latency_ms is not None else ""
    figures = [
        Figure(workload, f"{at}first run (fresh dir)", "s", wall["first"], baseline=sync,
               baseline_label=aws, target=SYNC_TARGET if at else ""),
        Figure(workload, f"{at}no-change re-run", "s", wall["rerun"], baseline=wall["first"],
               baseline_label="mlpipe first run", target=RERUN_TARGET),
        Figure(workload, f"{at}first run vs the floor", "s", wall["first"],
               baseline=wall["floor"], baseline_label=f"floor: list + {WORKERS} threads of GETs",
               target=FLOOR_TARGET),
        Figure(workload, f"{at}floor: list + GETs", "s", wall["floor"], baseline=sync,
               baseline_label=aws),
    ]
    cpu = {name: sample.cpu_ms_per_object(name, count) for name in ("first", "sync", "floor")}
    if cpu["first"] is not None and not at:
        figures.append(Figure(workload, "server CPU, first run", "ms/object", cpu["first"],
                              baseline=cpu["floor"], baseline_label="floor"))
        if cpu["sync"] is not None:
            figures.append(Figure(workload, "server CPU, aws s3 sync", "ms/object",
                                  cpu["sync"], baseline=cpu["floor"], baseline_label="floor"))
    return figures


if __name__ == "__main__":
    main()
