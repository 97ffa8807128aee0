"""Fashion-MNIST end to end: ``mlpipe demo --dataset fashion-mnist`` (``make demo-large``).

Debian's ``dataset-fashion-mnist`` (70,000 real 28x28 photos of clothes) written as
``train/ val/ test/`` class folders of PNGs (the official 10,000 test images as ``test``),
uploaded to the demo's local S3-compatible server, then the whole ``image_classifier``
pipeline: download, preprocess (user split folders honoured), train (``simple_cnn``, the
config's settings, ``--epochs``), evaluate, upload, register, deploy, in a fresh process
with a scratch ``MLPIPE_HOME``. Reported: test accuracy, the wall time of the whole command
and of the DAG run, and the peak RSS of the command's process tree (the S3 server runs
inside it; the model server started by the demo is its child and is included).
No baseline: the published figure for a 2-layer CNN on Fashion-MNIST is ~0.91 accuracy.
Usage: ``python benchmarks/ml_fashion_mnist.py [--epochs 3] [--limit N] [--quick]
[--json PATH]`` (``--quick``: 1,000 images of each official set, 1 epoch).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _report import Figure, add_arguments, emit
from ml_preprocess import run_measured

from mlpipe.ml.datasets import FASHION_MNIST_DIR

REPO = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> list[Figure]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--limit", type=int, default=None,
                        help="images of each official set (default: all 70,000)")
    add_arguments(parser)
    args = parser.parse_args(argv)
    if not (FASHION_MNIST_DIR / "train-images-idx3-ubyte.gz").is_file():
        raise SystemExit(f"{FASHION_MNIST_DIR} is missing: apt-get install -y "
                         "dataset-fashion-mnist (or make demo-large)")
    limit, epochs = (1000, 1) if args.quick else (args.limit, args.epochs)
    command = [sys.executable, "-m", "mlpipe", "demo", "--dataset", "fashion-mnist",
               "--epochs", str(epochs)] + (["--limit", str(limit)] if limit else [])
    with tempfile.TemporaryDirectory(prefix="mlpipe-bench-fashion-") as tmp:
        env = {**os.environ, "MLPIPE_HOME": str(Path(tmp) / "home"),
               "MLFLOW_DISABLE_TELEMETRY": "true"}
        result = run_measured(command, env, cwd=REPO)
    output = result["stdout"]
    if result["returncode"]:
        raise RuntimeError(f"mlpipe demo failed ({result['returncode']}):\n{output[-3000:]}")
    accuracy = re.search(r"test accuracy: ([0-9.]+)", output)
    dag_run = re.search(r"DAG run \S+: success in ([0-9.]+) s", output)
    if accuracy is None or dag_run is None:
        raise AssertionError(f"no accuracy or DAG run time in the demo's output:\n{output}")
    images = f"{2 * limit:,} images" if limit else "70,000 images"
    workload = f"Fashion-MNIST {images}, {epochs} epoch(s), whole pipeline"
    figures = [
        Figure(workload, "test accuracy", "", float(accuracy.group(1)), higher_is_better=True),
        Figure(workload, "DAG run time", "s", float(dag_run.group(1))),
        Figure(workload, "command wall time", "s", result["seconds"]),
        Figure(workload, "peak RSS (process tree)", "MB", result["peak_mb"]),
    ]
    print(output[output.find("image_classifier "):][:4000])
    emit("ml_fashion_mnist", figures, args.json)
    return figures


if __name__ == "__main__":
    main()
