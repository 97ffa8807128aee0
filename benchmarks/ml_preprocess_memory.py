"""Peak memory of ``ImagePreprocessOperator`` as the number of images grows (issue 17).

Synthesises ``--images`` (100,000) 256x256 JPEG files on disk, in two class folders (copies
of 64 distinct crops of scikit-learn's sample photos: decoding cost and sizes are real, and
writing them is quick), and a tenth as many in a second folder. Each set is preprocessed to
``--size`` (224) px by a one-task DAG in a fresh process (``ml_preprocess.py --variant
mlpipe``, default ``num_workers``: every CPU); the peak of the summed RSS of that process
tree (the forkserver and its workers included) is sampled every 20 ms. Reported: both peaks,
the larger set's against the smaller's (target: peak RSS does not grow with the number of
images) and against the 2 GB target, and the images/s. The data set written is
images x 3 x size x size bytes (15 GB for 100,000 at 224 px): check the free disk space.
Usage: ``python benchmarks/ml_preprocess_memory.py [--images 100000] [--size 224]
[--quick] [--json PATH]``.
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _ml_data import photo_crops, write_photo_dataset
from _report import Figure, add_arguments, emit
from ml_preprocess import measure

TARGET_MB = 2048
DISTINCT = 64


def write_copies(dest: Path, count: int) -> None:
    """``count`` JPEG files, two class folders, copies of ``DISTINCT`` real crops."""
    encoded: list[tuple[str, bytes]] = []
    for name, _, image in photo_crops(DISTINCT, 256, seed=11):
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=90)
        encoded.append((name, buffer.getvalue()))
    for name, _ in encoded:
        (dest / name).mkdir(parents=True, exist_ok=True)
    for i in range(count):
        name, data = encoded[i % DISTINCT]
        (dest / name / f"{i:06d}.jpg").write_bytes(data)


def main(argv: list[str] | None = None) -> list[Figure]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=100_000)
    parser.add_argument("--size", type=int, default=224)
    add_arguments(parser)
    args = parser.parse_args(argv)
    count, size = (200, 32) if args.quick else (args.images, args.size)
    small = max(20, count // 10)
    need = (count + small) * 3 * size * size
    with tempfile.TemporaryDirectory(prefix="mlpipe-bench-prepmem-") as tmp:
        free = shutil.disk_usage(tmp).free
        if need > free * 0.9:
            raise SystemExit(f"ml_preprocess_memory: {need / 2**30:.1f} GiB of shards needed, "
                             f"{free / 2**30:.1f} GiB free under {tmp}; lower --images")
        warm = Path(tmp) / "warm"
        write_photo_dataset(warm, 4, 256, fmt="JPEG", seed=7)
        results = {}
        for n in (small, count):
            source = Path(tmp) / f"photos-{n}"
            write_copies(source, n)
            results[n] = measure("mlpipe", source, warm, size, Path(tmp) / f"home-{n}")
            if results[n]["images"] != n:
                raise AssertionError(f"{results[n]['images']} of {n} images preprocessed")
            shutil.rmtree(source)
            shutil.rmtree(Path(tmp) / f"home-{n}")  # the data set: gigabytes
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"load average {load:.1f} on {os.cpu_count()} CPUs")
    workload = f"preprocess JPEG 256x256 -> {size}x{size}, whole process tree"
    big, little = results[count], results[small]
    figures = [
        Figure(workload, f"peak RSS, {count} images", "MB", big["peak_mb"],
               baseline=little["peak_mb"], baseline_label=f"{small} images",
               target="no growth with images"),
        Figure(workload, f"peak RSS, {count} images vs the target", "MB", big["peak_mb"],
               baseline=TARGET_MB, baseline_label="2 GB target", target=f"< {TARGET_MB} MB"),
        Figure(workload, f"throughput, {count} images", "images/s",
               count / big["seconds"], higher_is_better=True),
    ]
    emit("ml_preprocess_memory", figures, args.json)
    return figures


if __name__ == "__main__":
    main()
