"""``mlpipe demo``: the image_classifier pipeline end to end, with nothing configured.

Starts an S3-compatible server on 127.0.0.1 (moto's server mode, a free port), seeds
bucket ``mlpipe-demo`` with scikit-learn's real 8x8 handwritten digits as PNGs, starts
``mlpipe serve models:/digits_classifier@production`` on a free port, runs
``image_classifier`` with the SQLite metadata DB and the local MLflow store (its deploy task
reloads and smoke-tests that endpoint), asks the endpoint for a sample prediction and prints
where to look. A second run finds every object unchanged and reuses the cached results.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

import typer

from mlpipe.cli.common import open_engine, parse_conf
from mlpipe.cli.output import OutputFormat, console, guarded, print_rows

BUCKET = "mlpipe-demo"
#: --dataset: bucket prefix, run parameters it implies (--conf wins), how to describe it
DATASETS = {
    "digits": ("digits", {}, "real 8x8 digit images (scikit-learn's load_digits)"),
    "fashion-mnist": ("fashion-mnist", {"model_name": "fashion_mnist_classifier",
                                        "gate_threshold": 0.8, "epochs": 3},
                      "real 28x28 Fashion-MNIST photos (Debian's dataset-fashion-mnist)"),
}


def _start_s3() -> tuple[Any, str]:
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no access log on the console
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    return server, f"http://127.0.0.1:{server._server.server_port}"


def seed_demo_bucket(images: Path, limit: int | None = None, prefix: str = "digits") -> int:
    """Upload the PNGs under ``images`` to s3://mlpipe-demo/<prefix>/ (in parallel), through
    the ``aws_default`` connection; the first ``limit`` files, classes interleaved."""
    from mlpipe.hooks import S3Hook

    client = S3Hook("aws_default").get_conn()
    client.create_bucket(Bucket=BUCKET)
    # File names are the data set's own order (classes interleaved): a prefix is balanced.
    files = sorted(images.rglob("*.png"), key=lambda p: (p.name, p.parent.name))[: limit or None]

    def put(path: Path) -> None:
        key = f"{prefix}/{path.relative_to(images).as_posix()}"
        client.upload_file(str(path), BUCKET, key)

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(put, files))
    return len(files)


def _demo_images(home: Path, dataset: str, limit: int | None) -> tuple[Path, int | None]:
    """The data set's PNGs under ``home`` (written once), and the upload limit left to apply:
    Fashion-MNIST is limited when written (its folders are splits: a prefix is unbalanced)."""
    from mlpipe.ml.datasets import write_digits_pngs, write_fashion_mnist_pngs

    if dataset == "digits":
        images = home / "demo-digits"
        if not images.exists():
            write_digits_pngs(images)
        return images, limit
    images = home / f"demo-fashion-mnist-{limit or 'all'}"
    if not images.exists():
        write_fashion_mnist_pngs(images.with_name(images.name + ".partial"), limit=limit)
        images.with_name(images.name + ".partial").rename(images)
    return images, None


def _start_serving(model_uri: str, tracking_uri: str, log_path: Path) -> tuple[Any, str]:
    """``mlpipe serve model_uri`` in a subprocess on a free loopback port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "MLFLOW_TRACKING_URI": tracking_uri}
    log_file = log_path.open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "mlpipe", "serve", model_uri, "--port", str(port)],
        env=env, stdout=log_file, stderr=subprocess.STDOUT)
    return process, f"http://127.0.0.1:{port}"


def _wait_listening(process: Any, url: str, log_path: Path, deadline_s: float = 120) -> None:
    from mlpipe.hooks.serving import ServingClient, ServingError

    client = ServingClient(url, timeout=5)
    deadline = time.monotonic() + deadline_s
    while True:
        if process.poll() is not None:
            raise ServingError(f"mlpipe serve exited early; see {log_path}")
        try:
            client.health()
            return
        except ServingError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


@guarded
def demo(
    limit: Annotated[int | None, typer.Option(help="Use only the first N images")] = None,
    epochs: Annotated[int | None, typer.Option(help="Override the config's epochs")] = None,
    conf: Annotated[str | None, typer.Option(
        help='More run parameters as JSON, e.g. \'{"gate_threshold": 0.8}\'')] = None,
    dataset: Annotated[str, typer.Option(
        help="digits (1,797 images, seconds) or fashion-mnist (70,000; needs Debian's "
             "dataset-fashion-mnist package)")] = "digits",
) -> None:
    """Run image_classifier end to end on a local S3-compatible server seeded with digits."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    if dataset not in DATASETS:
        from mlpipe.ml.splits import DatasetError

        raise DatasetError(f"--dataset: unknown data set {dataset!r}; one of {list(DATASETS)}")
    prefix, implied, description = DATASETS[dataset]
    extra = {**implied, **(parse_conf(conf) or {})}
    began = time.perf_counter()
    server, endpoint = _start_s3()
    serving = None
    try:
        # Any key works against the local server; long, unusual strings so that masking
        # secrets in logs does not blank out ordinary words.
        os.environ["MLPIPE_CONN_AWS_DEFAULT"] = (
            "s3://demo-access-key-id:demo-secret-access-key-not-real@/"
            f"?endpoint_url={quote(endpoint, safe='')}&region_name=us-east-1")
        engine = open_engine()
        images, limit = _demo_images(engine.settings.home.resolve(), dataset, limit)
        dag = engine.get_dag("image_classifier")
        if dataset != "digits":
            extra.setdefault("source", f"s3://{BUCKET}/{prefix}/")
        model_name = extra.get("model_name", dag.params["model_name"].value)
        serve_log = engine.settings.home.resolve() / "demo-serve.log"
        serving, serving_url = _start_serving(f"models:/{model_name}@production",
                                              engine.settings.tracking.tracking_uri, serve_log)
        count = seed_demo_bucket(images, limit, prefix)
        console.print(f"S3-compatible server on {endpoint}: s3://{BUCKET}/{prefix}/ holds "
                      f"{count} {description}")
        _wait_listening(serving, serving_url, serve_log)
        console.print(f"serving endpoint {serving_url} follows models:/{model_name}@production")
        run_conf: dict[str, Any] = {**extra, "serving_url": serving_url}
        if epochs:
            run_conf["epochs"] = epochs
        record = engine.trigger(dag, conf=run_conf)
        run = engine.run(dag, record.run_id)
        _report(engine, run, time.perf_counter() - began)
        if run.state.value == "success":
            _sample_prediction(serving_url, images)
        console.print(f"Inspect runs, metrics and the model in MLflow: mlpipe ui   (store "
                      f"{engine.settings.tracking.tracking_uri})")
    finally:
        server.stop()
        if serving is not None:
            serving.terminate()
            serving.wait(timeout=30)
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
    deploy = run.get_task_instance("deploy")
    if deploy is not None and deploy.state.value == "success":
        result = deploy.xcom_pull()
        console.print(f"deployed: models:/{result['model_name']}@{result['alias']} -> version "
                      f"{result['version']} (was {result['previous_version'] or 'unset'})")
    elif deploy is not None and deploy.state.value == "skipped":
        reason = next((line.split("Skipping task: ", 1)[1] for line in deploy.log.splitlines()
                       if "Skipping task: " in line), "see the task log")
        console.print(f"deploy skipped: {reason}")
    console.print(f"DAG run {run.run_id}: {run.state.value} in {seconds:.1f} s")


def _sample_prediction(url: str, images: Path) -> None:
    """Ask the endpoint about one real digit and print its answer."""
    from mlpipe.hooks.serving import ServingClient

    client = ServingClient(url)
    health = client.health()
    if health["status"] != "ok":
        console.print(f"no sample prediction: {health['detail']}")
        return
    sevens = sorted(images.glob("7/*.png"))
    sample = sevens[0] if sevens else sorted(images.rglob("*.png"))[0]
    what = "a handwritten 7" if sevens else f"a {sample.parent.name}"
    answer = client.predict([(sample.name, sample.read_bytes())])
    best = answer["predictions"][0]
    console.print(f"sample prediction from {url}/predict for {what} ({sample.name}): "
                  f"{best['label']} with probability {best['probability']:.3f} (model version "
                  f"{answer['model_version']})")


def _note(ti: Any) -> str:
    log = ti.log
    if "Cache hit" in log:
        return "cache hit: reused the recorded output"
    for line in log.splitlines():
        if "downloaded " in line and "skipped" in line:
            return line.split(" - ", 1)[-1][:90]
    return ""
