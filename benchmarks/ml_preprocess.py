"""Image preprocessing at scale: ``ImagePreprocessOperator`` against a single-process Pillow
loop and torchvision's ``ImageFolder`` + ``DataLoader``, in images/s and peak memory.

Input: ``--images`` (20,000) 256x256 JPEG crops of scikit-learn's two sample photos (fixed
seed), one class folder per photo; every variant resizes them to ``--size`` (224) square,
aspect kept, center-cropped. Each variant runs in a fresh process of its own (this file with
``--variant``), which imports what it needs and warms up on 4 images before its clock
starts:
- mlpipe: a DAG with one ``ImagePreprocessOperator`` (default ``num_workers``: every CPU)
  through ``dag.test()``: decode, resize, split, statistics, uint8 shards written as they
  fill, the data set artifact;
- Pillow loop: one process, for each file Pillow decode, RGB, ``ImageOps.fit`` (the same
  bilinear resize and crop) into one preallocated uint8 array: the data set in memory, as
  a loop that feeds training from RAM holds it;
- torchvision: ``ImageFolder`` with ``Resize`` + ``CenterCrop`` + ``PILToTensor``, a
  ``DataLoader(num_workers=2, batch_size=64)``, batches copied into one preallocated array.
Peak memory: the sum of the RSS of the variant's process tree (workers included), sampled
every 20 ms with psutil. Checks: every variant saw every image, and for 64 files mlpipe's
stored pixels are the Pillow loop's up to JPEG draft-mode decoding (mean absolute difference
<= 8 of 255 levels; a wrong image differs by ~50).
Usage: ``python benchmarks/ml_preprocess.py [--images 20000] [--size 224] [--repeat 1]
[--quick] [--json PATH]``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _ml_data import median, write_photo_dataset
from _report import Figure, add_arguments, emit

TARGET = ">= 1.8x"
VARIANTS = ("mlpipe", "pillow", "torchvision")
LABELS = {"pillow": "Pillow loop, 1 process",
          "torchvision": "torchvision ImageFolder + DataLoader(num_workers=2)"}


def run_mlpipe(source: Path, size: int) -> int:
    """One ``dag.test()`` of a one-task DAG; returns the number of images stored."""
    from mlpipe import DAG
    from mlpipe.artifacts import FileArtifactStore
    from mlpipe.ml.preprocess import read_manifest
    from mlpipe.operators import ImagePreprocessOperator

    with DAG("bench_preprocess") as dag:
        ImagePreprocessOperator(task_id="preprocess", input_uri=source.as_uri(),
                                image_size=size)
    run = dag.test()
    ti = run.get_task_instance("preprocess")
    if run.state != "success" or ti is None:
        raise RuntimeError(f"preprocessing failed: {ti.error if ti else run.state}")
    dataset = FileArtifactStore().path_of(ti.xcom_pull().uri)
    print(json.dumps({"dataset": str(dataset)}))
    return sum(read_manifest(dataset)["counts"].values())


def pillow_pixels(path: Path, size: int) -> Any:
    """One file decoded and resized as the Pillow loop does: uint8 (H, W, 3)."""
    import numpy as np
    from PIL import Image, ImageOps

    with Image.open(path) as img:
        fitted = ImageOps.fit(img.convert("RGB"), (size, size), Image.Resampling.BILINEAR)
        return np.asarray(fitted, dtype=np.uint8)


def run_pillow(source: Path, size: int) -> int:
    import numpy as np

    files = sorted(source.rglob("*.jpg"))
    out = np.empty((len(files), size, size, 3), dtype=np.uint8)
    for i, path in enumerate(files):
        out[i] = pillow_pixels(path, size)
    return len(out)


def run_torchvision(source: Path, size: int) -> int:
    import torch
    from torch.utils.data import DataLoader
    from torchvision import datasets, transforms

    transform = transforms.Compose([transforms.Resize(size), transforms.CenterCrop(size),
                                    transforms.PILToTensor()])
    dataset = datasets.ImageFolder(str(source), transform=transform)
    out = torch.empty((len(dataset), 3, size, size), dtype=torch.uint8)
    seen = 0
    for x, _ in DataLoader(dataset, batch_size=64, num_workers=2):
        out[seen:seen + len(x)] = x
        seen += len(x)
    return seen


def child(variant: str, source: Path, warm: Path, size: int) -> None:
    """Warm up, then time ``variant`` on ``source``; print its figures as JSON."""
    work = {"mlpipe": run_mlpipe, "pillow": run_pillow, "torchvision": run_torchvision}[variant]
    work(warm, size)
    started = time.perf_counter()
    images = work(source, size)
    print(json.dumps({"seconds": time.perf_counter() - started, "images": images}))


def measure(variant: str, source: Path, warm: Path, size: int, home: Path
            ) -> dict[str, Any]:
    """Run one variant in its own process; its figures plus the peak RSS of its tree."""
    env = {**os.environ, "MLPIPE_HOME": str(home), "MLFLOW_DISABLE_TELEMETRY": "true"}
    result = run_measured([sys.executable, __file__, "--variant", variant, str(source),
                           str(warm), "--size", str(size)], env)
    if result["returncode"]:
        raise RuntimeError(f"the {variant} variant exited with {result['returncode']}")
    lines = [json.loads(line) for line in result["stdout"].splitlines()
             if line.startswith("{")]
    figures = {k: v for line in lines for k, v in line.items()}
    return {**figures, "peak_mb": result["peak_mb"]}


def run_measured(command: list[str], env: dict[str, str], cwd: Path | None = None
                 ) -> dict[str, Any]:
    """Run ``command``; its return code, stdout, wall seconds and the peak of the summed
    RSS of its process tree (sampled every 20 ms with psutil)."""
    import psutil

    started = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env,
                                cwd=cwd)
        peak = 0
        parent = psutil.Process(proc.pid)
        while proc.poll() is None:
            try:
                tree = [parent, *parent.children(recursive=True)]
                peak = max(peak, sum(_rss(p) for p in tree))
            except psutil.NoSuchProcess:
                pass
            time.sleep(0.02)
        seconds = time.perf_counter() - started
        out.seek(0)
        return {"returncode": proc.returncode, "stdout": out.read(), "seconds": seconds,
                "peak_mb": peak / 2**20}


def _rss(process: Any) -> int:
    import psutil

    try:
        return int(process.memory_info().rss)
    except psutil.NoSuchProcess:
        return 0


def check_same_pixels(dataset: Path, source: Path, size: int, sample: int = 64) -> None:
    """``sample`` files' stored pixels against the Pillow loop's for the same file."""
    from mlpipe.ml.shards import ShardDataset

    checked = 0
    for split in ("train", "val", "test"):
        ds = ShardDataset(dataset, split)
        files = ds.manifest["splits"][split]["files"]
        for i in range(0, len(ds), max(1, len(ds) // (sample // 3 or 1))):
            chw = ds[i][0].numpy()
            expected = pillow_pixels(source / files[i]["path"], size).astype("int16")
            diff = abs(chw.transpose(1, 2, 0).astype("int16") - expected).mean()
            if diff > 8:
                raise AssertionError(f"{files[i]['path']}: the operator's pixels differ from "
                                     f"Pillow's by {diff:.1f} levels on average")
            checked += 1
    if not checked:
        raise AssertionError("no stored image to check")


def main(argv: list[str] | None = None) -> list[Figure]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=20_000)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--variant", choices=VARIANTS, help=argparse.SUPPRESS)
    parser.add_argument("paths", nargs="*", type=Path, help=argparse.SUPPRESS)
    add_arguments(parser)
    args = parser.parse_args(argv)
    if args.variant:
        child(args.variant, args.paths[0], args.paths[1], args.size)
        return []
    count, size, repeat = (100, 32, 1) if args.quick else (args.images, args.size, args.repeat)
    runs: dict[str, list[dict[str, Any]]] = {v: [] for v in VARIANTS}
    with tempfile.TemporaryDirectory(prefix="mlpipe-bench-prep-") as tmp:
        source, warm = Path(tmp) / "photos", Path(tmp) / "warm"
        write_photo_dataset(source, count, 256, fmt="JPEG", seed=6)
        write_photo_dataset(warm, 4, 256, fmt="JPEG", seed=7)
        for i in range(repeat):
            for variant in VARIANTS if i % 2 == 0 else VARIANTS[::-1]:
                result = measure(variant, source, warm, size, Path(tmp) / f"home{i}")
                if result["images"] != count:
                    raise AssertionError(f"{variant} handled {result['images']} of {count}")
                runs[variant].append(result)
        check_same_pixels(Path(runs["mlpipe"][0]["dataset"]), source, size)
    figures = report(runs, count, size)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"load average {load:.1f} on {os.cpu_count()} CPUs (parallel speed-up needs idle "
          "CPUs)")
    emit("ml_preprocess", figures, args.json)
    return figures


def report(runs: dict[str, list[dict[str, Any]]], count: int, size: int) -> list[Figure]:
    """Throughput and peak memory of mlpipe against each baseline (medians)."""
    rate = {v: count / median([r["seconds"] for r in rs]) for v, rs in runs.items()}
    peak = {v: median([r["peak_mb"] for r in rs]) for v, rs in runs.items()}
    workload = f"preprocess {count} JPEG 256x256 -> {size}x{size}"
    figures = []
    for variant, suffix in (("pillow", ""), ("torchvision", " vs torchvision")):
        figures += [
            Figure(workload, f"throughput ({os.cpu_count()} CPUs){suffix}", "images/s",
                   rate["mlpipe"], baseline=rate[variant], baseline_label=LABELS[variant],
                   higher_is_better=True, target=TARGET if variant == "pillow" else ""),
            Figure(workload, f"peak RSS{suffix}", "MB", peak["mlpipe"], baseline=peak[variant],
                   baseline_label=LABELS[variant]),
        ]
    return figures


if __name__ == "__main__":
    main()
