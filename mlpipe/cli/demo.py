"""``mlpipe demo``: the image_classifier pipeline end to end, with nothing configured.

Starts an S3-compatible server on 127.0.0.1 (moto's server mode, a free port), seeds
bucket ``mlpipe-demo`` with scikit-learn's real 8x8 handwritten digits as PNGs, runs
``image_classifier`` with the SQLite metadata DB and the local MLflow store, and prints
where to look. A second run finds every object unchanged and reuses the preprocessing.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

import typer

from mlpipe.cli.common import open_engine
from mlpipe.cli.output import OutputFormat, console, guarded, print_rows

BUCKET = "mlpipe-demo"


def _start_s3() -> tuple[Any, str]:
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no access log on the console
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    return server, f"http://127.0.0.1:{server._server.server_port}"


def _seed(endpoint: str, images: Path, limit: int | None) -> int:
    """Upload the digits PNGs to s3://mlpipe-demo/digits/<class>/<n>.png (in parallel)."""
    from mlpipe.hooks import S3Hook

    client = S3Hook("aws_default").get_conn()
    client.create_bucket(Bucket=BUCKET)
    # File names are the data set's own order (classes interleaved): a prefix is balanced.
    files = sorted(images.rglob("*.png"), key=lambda p: (p.name, p.parent.name))[: limit or None]

    def put(path: Path) -> None:
        key = f"digits/{path.relative_to(images).as_posix()}"
        client.upload_file(str(path), BUCKET, key)

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(put, files))
    return len(files)


@guarded
def demo(
    limit: Annotated[int | None, typer.Option(help="Use only the first N images")] = None,
    epochs: Annotated[int | None, typer.Option(help="Override the config's epochs")] = None,
) -> None:
    """Run image_classifier end to end on a local S3-compatible server seeded with digits."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    began = time.perf_counter()
    server, endpoint = _start_s3()
    try:
        # Any key works against the local server; long, unusual strings so that masking
        # secrets in logs does not blank out ordinary words.
        os.environ["MLPIPE_CONN_AWS_DEFAULT"] = (
            "s3://demo-access-key-id:demo-secret-access-key-not-real@/"
            f"?endpoint_url={quote(endpoint, safe='')}&region_name=us-east-1")
        engine = open_engine()
        images = engine.settings.home.resolve() / "demo-digits"
        if not images.exists():
            from mlpipe.ml.datasets import write_digits_pngs

            write_digits_pngs(images)
        count = _seed(endpoint, images, limit)
        console.print(f"S3-compatible server on {endpoint}: s3://{BUCKET}/digits/ holds "
                      f"{count} real 8x8 digit images (scikit-learn's load_digits)")
        dag = engine.get_dag("image_classifier")
        conf: dict[str, Any] = {"epochs": epochs} if epochs else {}
        record = engine.trigger(dag, conf=conf)
        run = engine.run(dag, record.run_id)
        _report(engine, run, time.perf_counter() - began)
    finally:
        server.stop()
    if run.state.value != "success":
        raise typer.Exit(1)


def _report(engine: Any, run: Any, seconds: float) -> None:
    rows = [{"task_id": ti.task_id, "state": ti.state.value, "try_number": ti.try_number,
             "duration": f"{ti.duration.total_seconds():.2f}s" if ti.duration else None,
             "note": _note(ti)} for ti in run.task_instances]
    print_rows(rows, ["task_id", "state", "try_number", "duration", "note"],
               OutputFormat.table, title=f"image_classifier {run.run_id}")
    evaluate = run.get_task_instance("evaluate")
    report = evaluate.xcom_pull() if evaluate is not None else None
    if report:
        console.print(f"test accuracy: {report['accuracy']:.3f} "
                      f"(macro F1 {report['macro_f1']:.3f})")
    register = run.get_task_instance("register")
    registered = register.xcom_pull() if register is not None else None
    if registered:
        console.print(f"registered model: {registered}")
    console.print(f"DAG run {run.run_id}: {run.state.value} in {seconds:.1f} s")
    console.print("Not in this demo yet: deploying behind an alias and serving predictions "
                  "(the next part of the ML path).")
    console.print(f"Inspect runs, metrics and the model in MLflow: mlpipe ui   (store "
                  f"{engine.settings.tracking.tracking_uri})")


def _note(ti: Any) -> str:
    log = ti.log
    if "Cache hit" in log:
        return "cache hit: reused the recorded output"
    for line in log.splitlines():
        if "downloaded " in line and "skipped" in line:
            return line.split(" - ", 1)[-1][:90]
    return ""
