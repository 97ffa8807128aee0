"""Image preprocessing: ``ImagePreprocessOperator`` against a single-process Pillow loop.

Input: ``--images`` 256x256 JPEG crops of scikit-learn's two sample photos (fixed seed),
one class folder per photo. Per repeat:
- mlpipe: a DAG with one ``ImagePreprocessOperator`` (default ``num_workers``: every CPU)
  run through ``dag.test()``: decode, resize, split, statistics, uint8 shards, artifact;
- the same with ``num_workers=1`` (decoding in the task's process), to tell the process
  pool's cost and gain from the rest of the operator's work;
- baseline: one process, for each file: Pillow decode, RGB, the same bilinear resize to
  the same ``image_size``, to a uint8 array; then ``np.stack``.
Checks: all saw every image, and the operator's shards hold the baseline's pixels up to
JPEG draft-mode decoding (the operator lets libjpeg scale down while decoding, which the
plain loop does not): mean absolute difference <= 8 of 255 levels per image (a wrong
image differs by ~50).
Reported: images/s (medians) and the ratio.
Usage: ``python benchmarks/ml_preprocess.py [--images 2000] [--repeat 3] [--quick]
[--json PATH]``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from functools import partial
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _ml_data import median, scratch_env, timed, write_photo_dataset
from _report import Figure, add_arguments, emit

from mlpipe import DAG
from mlpipe.artifacts import FileArtifactStore
from mlpipe.operators import ImagePreprocessOperator

IMAGE_SIZE = (32, 32)
TARGET = ">= 1.8x"


def run_mlpipe(source: Path, num_workers: int | None = None) -> Path:
    """One ``dag.test()`` of a one-task DAG; returns the data set folder it wrote."""
    with DAG("bench_preprocess") as dag:
        ImagePreprocessOperator(task_id="preprocess", input_uri=source.as_uri(),
                                image_size=IMAGE_SIZE, num_workers=num_workers)
    run = dag.test()
    ti = run.get_task_instance("preprocess")
    if run.state != "success" or ti is None:
        raise RuntimeError(f"preprocessing failed: {ti.error if ti else run.state}")
    return FileArtifactStore().path_of(ti.xcom_pull().uri)


def run_baseline(files: list[Path]) -> Any:
    """Decode, resize and stack every file in this process; uint8 (N, H, W, C)."""
    import numpy as np
    from PIL import Image

    arrays = []
    for path in files:
        with Image.open(path) as img:
            rgb = img.convert("RGB").resize((IMAGE_SIZE[1], IMAGE_SIZE[0]),
                                            Image.Resampling.BILINEAR)
            arrays.append(np.asarray(rgb, dtype=np.uint8))
    return np.stack(arrays)


def check_same_pixels(dataset: Path, source: Path, files: list[Path], baseline: Any) -> None:
    """Every image in the operator's shards matches the baseline's array for that file
    (mean absolute difference at most 8 of 255 levels: draft-mode JPEG decoding)."""
    import torch

    from mlpipe.ml.preprocess import read_manifest

    manifest = read_manifest(dataset)
    index = {f.relative_to(source).as_posix(): i for i, f in enumerate(files)}
    seen = 0
    for split in manifest["splits"].values():
        paths = [f["path"] for f in split["files"]]
        pixels = [torch.load(dataset / rel, weights_only=True)["x"] for rel in split["shards"]]
        stacked = torch.cat(pixels).numpy() if pixels else baseline[:0]
        for path, chw in zip(paths, stacked, strict=True):
            expected = baseline[index[path]].astype("int16")
            diff = abs(chw.transpose(1, 2, 0).astype("int16") - expected).mean()
            if diff > 8:
                raise AssertionError(f"{path}: the operator's pixels differ from Pillow's "
                                     f"by {diff:.1f} levels on average")
        seen += len(paths)
    if seen != len(files) or manifest["corrupt_count"]:
        raise AssertionError(f"the operator kept {seen} of {len(files)} images "
                             f"({manifest['corrupt_count']} corrupt)")


def main(argv: list[str] | None = None) -> list[Figure]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=3)
    add_arguments(parser)
    args = parser.parse_args(argv)
    count, repeat = (100, 1) if args.quick else (args.images, args.repeat)
    times: dict[str, list[float]] = {"mlpipe": [], "in-process": [], "baseline": []}
    with tempfile.TemporaryDirectory(prefix="mlpipe-bench-prep-") as tmp, \
            scratch_env(MLPIPE_HOME=str(Path(tmp) / "home"), MLFLOW_DISABLE_TELEMETRY="true"):
        source = Path(tmp) / "photos"
        files = write_photo_dataset(source, count, 256, fmt="JPEG", seed=6)
        # Warm-up: the engine's and torch's imports are a one-off cost of the process (a
        # task process has them too), not of preprocessing; without this the first timed
        # step pays ~2 s for them.
        warm = Path(tmp) / "warm"
        write_photo_dataset(warm, 4, 32, fmt="JPEG", seed=7)
        run_mlpipe(warm, 1)
        outputs: dict[str, Path] = {}
        for i in range(repeat):
            steps = list(times)
            for step in steps if i % 2 == 0 else steps[::-1]:
                if step == "baseline":
                    seconds, baseline = timed(lambda: run_baseline(files))
                else:
                    workers = 1 if step == "in-process" else None
                    seconds, dataset = timed(partial(run_mlpipe, source, workers))
                    outputs[step] = dataset
                times[step].append(seconds)
            if len(baseline) != count:
                raise AssertionError(f"the baseline decoded {len(baseline)} of {count} images")
            for dataset in outputs.values():
                check_same_pixels(dataset, source, files, baseline)
    rate = {name: count / median(values) for name, values in times.items()}
    workload = f"preprocess {count} JPEG 256x256 -> {IMAGE_SIZE[0]}x{IMAGE_SIZE[1]}"
    pillow = "Pillow loop, 1 process"
    figures = [
        Figure(workload, f"throughput ({os.cpu_count()} CPUs)", "images/s", rate["mlpipe"],
               baseline=rate["baseline"], baseline_label=pillow, higher_is_better=True,
               target=TARGET),
        Figure(workload, "throughput, num_workers=1", "images/s", rate["in-process"],
               baseline=rate["baseline"], baseline_label=pillow, higher_is_better=True),
    ]
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"load average {load:.1f} on {os.cpu_count()} CPUs (parallel speed-up needs idle "
          "CPUs)")
    emit("ml_preprocess", figures, args.json)
    return figures


if __name__ == "__main__":
    main()
