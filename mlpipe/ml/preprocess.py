"""Class-per-folder images in; resized, split uint8 shards and a manifest out, streamed.

Layout written by ``preprocess_images`` (read by ``mlpipe.ml.shards.ShardDataset``)::

    manifest.json             classes, sizes, mean/std (train split only), splits, corrupt files
    train/shard-00000.npy     uint8 N x C x H x W (numpy .npy: memory-mappable)
    val/...  test/...

Which files and which split: ``mlpipe.ml.splits`` (user ``train/ val/ test/`` folders, or a
stable per-file hash). Each split's files, in a stable pseudo-random order (so every shard
mixes the classes), are cut into shards of ``shard_mb`` MB (at most ``shard_size`` images);
a process pool of workers each decodes and resizes (``mlpipe.ml.images``) one shard's files
straight into its buffer and writes the shard file. The parent only receives file names,
hashes, errors and level histograms, never pixels: peak memory is one shard per worker,
whatever the number of images, and nothing is ever converted to float32 here
(normalisation is the training transform's job). The train split's per-channel mean and
std come from per-channel histograms of the 256 levels (exact integer counts, taken by
Pillow in the same pass; no float copy of any image). The same inputs and options always
give the same bytes, whatever the number of workers.
"""

from __future__ import annotations

import functools
import hashlib
import json
import multiprocessing
import os
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlpipe.ml.images import MAX_PIXELS, RESIZE_MODES, CorruptImageError, decode_bytes
from mlpipe.ml.splits import (
    DEFAULT_INCLUDE,
    SPLITS,
    DatasetError,
    ImageFile,
    find_images,
    order_key,
)

if TYPE_CHECKING:
    import numpy as np
    import torch

__all__ = [
    "DEFAULT_INCLUDE",
    "MANIFEST_NAME",
    "SPLITS",
    "CorruptImageError",
    "DatasetError",
    "PreprocessOptions",
    "channel_stats",
    "decode_bytes",
    "load_split",
    "load_split_pixels",
    "normalise",
    "preprocess_images",
    "preprocess_tree",
    "read_manifest",
]

MANIFEST_NAME = "manifest.json"
FORMAT = "mlpipe.image-dataset/2"


@dataclass(frozen=True)
class PreprocessOptions:
    """How images become shards; ``image_size`` is (height, width)."""

    image_size: tuple[int, int] = (32, 32)
    grayscale: bool = False
    val_fraction: float = 0.2
    test_fraction: float = 0.1
    seed: int = 0
    num_workers: int | None = None
    on_corrupt: str = "skip"
    shard_size: int = 1024
    shard_mb: float = 64.0
    resize: str = "shorter_side"
    include: tuple[str, ...] = DEFAULT_INCLUDE
    split: str = "auto"
    max_pixels: int = MAX_PIXELS
    #: a cold worker pool costs ~1-2 s to start (a task process is always cold), about what
    #: decoding 2,500 small images takes: fewer files than this per worker use fewer workers
    #: (in-process below twice this many)
    min_files_per_worker: int = 2500

    @property
    def image_bytes(self) -> int:
        return (1 if self.grayscale else 3) * self.image_size[0] * self.image_size[1]


@dataclass(frozen=True)
class _ShardJob:
    """One shard's worth of files of one split, decoded and written by one worker."""

    split: str
    number: int  # the shard's number within its split (its file name)
    files: tuple[str, ...]
    histogram: bool  # count the levels (the train split's statistics)


@dataclass(frozen=True)
class _ShardResult:
    """What a worker sends back: names, hashes and errors, never pixels."""

    job: _ShardJob
    shard: str | None  # the written shard's relative path (None: every file was corrupt)
    size: int  # the shard file's bytes
    sha256: str  # ... and their hash (so the parent never reads the shard again)
    decoded: list[tuple[str, str]]  # (path, sha256) of the images in the shard, in order
    corrupt: list[tuple[str, str, str]]  # (path, sha256, error)
    histogram: Any = None  # int64 (C, 256): how many pixels of each channel have each level


def write_shard(root: str, dest: str, options: PreprocessOptions, job: _ShardJob
                ) -> _ShardResult:
    """Read, hash, decode and resize ``job``'s files into one shard file (in a worker).

    Images go straight into the shard's preallocated buffer, so a worker holds one shard
    and the parent receives only the file list; the level histograms are Pillow's, in C.
    """
    import numpy as np

    from mlpipe.ml.images import decode_image, to_chw

    channels = 1 if options.grayscale else 3
    buffer = np.empty((len(job.files), channels, *options.image_size), dtype=np.uint8)
    histogram = np.zeros((channels, 256), dtype=np.int64) if job.histogram else None
    decoded: list[tuple[str, str]] = []
    corrupt: list[tuple[str, str, str]] = []
    for relpath in job.files:
        data = (Path(root) / relpath).read_bytes()
        sha = hashlib.sha256(data).hexdigest()
        try:
            img = decode_image(data, options.image_size, options.grayscale, options.resize,
                               options.max_pixels)
        except CorruptImageError as exc:
            corrupt.append((relpath, sha, exc.reason))
            if options.on_corrupt == "fail":
                break  # the parent raises; no need to decode the rest
            continue
        to_chw(img, buffer[len(decoded)])
        if histogram is not None:
            histogram += np.asarray(img.histogram(), dtype=np.int64).reshape(channels, 256)
        decoded.append((relpath, sha))
    if not decoded:
        return _ShardResult(job, None, 0, "", decoded, corrupt, histogram)
    shard = f"{job.split}/shard-{job.number:05d}.npy"
    (Path(dest) / job.split).mkdir(parents=True, exist_ok=True)
    with open(Path(dest) / shard, "wb") as raw:
        out = _HashingWriter(raw)
        np.save(out, buffer[:len(decoded)])
        raw.flush()
        os.fsync(raw.fileno())  # durable as the file store's own writes
    return _ShardResult(job, shard, out.size, out.digest.hexdigest(), decoded, corrupt,
                        histogram)


class _HashingWriter:
    """A binary file that hashes and counts what is written through it."""

    def __init__(self, raw: Any) -> None:
        self.raw = raw
        self.digest = hashlib.sha256()
        self.size = 0

    def write(self, data: Any) -> int:
        self.raw.write(data)
        self.digest.update(data)
        self.size += len(data)
        return len(data)


def _workers(count: int, jobs: int, options: PreprocessOptions) -> int:
    requested = (os.cpu_count() or 1) if options.num_workers is None else options.num_workers
    per_worker = max(1, options.min_files_per_worker)
    return min(max(requested, 1), max(1, count // per_worker), jobs)


def _shard_jobs(ordered: list[ImageFile], capacity: int) -> list[_ShardJob]:
    """Each split's files (in order) cut into shards of ``capacity`` files.

    The cut depends on the files and the capacity only, not on the number of workers, so
    any number of workers writes the same bytes; a shard holding a corrupt file is one
    image shorter.
    """
    jobs = []
    for split in SPLITS:
        paths = [f.path for f in ordered if f.split == split]
        for number, start in enumerate(range(0, len(paths), capacity)):
            jobs.append(_ShardJob(split, number, tuple(paths[start:start + capacity]),
                                  histogram=split == "train"))
    return jobs


def _run_jobs(root: Path, dest: Path, jobs: list[_ShardJob], count: int,
              options: PreprocessOptions) -> Iterator[_ShardResult]:
    """Every job's result, in order (a pool of workers when there are files enough)."""
    work = functools.partial(write_shard, str(root), str(dest), options)
    workers = _workers(count, len(jobs), options)
    if workers <= 1:
        yield from map(work, jobs)
        return
    pool = ProcessPoolExecutor(workers, mp_context=_pool_context())
    try:
        # results are small: every job can be queued; each worker holds one shard at a time
        futures = [pool.submit(work, job) for job in jobs]
        for future in futures:
            yield future.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _pool_context() -> multiprocessing.context.BaseContext:
    """forkserver: forking a process that runs the engine's threads is unsafe."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    return multiprocessing.get_context("forkserver")


def preprocess_images(source: Path, dest: Path, options: PreprocessOptions) -> dict[str, Any]:
    """Turn the images under ``source`` into a data set under ``dest`` (see the module doc).

    Returns:
        The manifest (also written to ``dest/manifest.json``).

    Raises:
        DatasetError: no class folders, no images, or no image in the train split.
        CorruptImageError: a file cannot be decoded and ``on_corrupt == "fail"``.
    """
    return preprocess_tree(source, dest, options)[0]


def preprocess_tree(source: Path, dest: Path, options: PreprocessOptions
                    ) -> tuple[dict[str, Any], list[tuple[str, int, str]]]:
    """:func:`preprocess_images`, also returning ``(relpath, size, sha256)`` of every file
    written under ``dest`` (the shards hashed by the workers that wrote them), sorted.

    Raises:
        DatasetError: no class folders, no images, or no image in the train split.
        CorruptImageError: a file cannot be decoded and ``on_corrupt == "fail"``.
    """
    if options.resize not in RESIZE_MODES:
        raise DatasetError(f"resize {options.resize!r} is not one of {list(RESIZE_MODES)}")
    classes, files, layout = find_images(
        Path(source), include=options.include, split=options.split, seed=options.seed,
        val_fraction=options.val_fraction, test_fraction=options.test_fraction)
    if not files:
        raise DatasetError(f"no images under {str(source)!r}; expected one folder per class "
                           f"holding {', '.join(options.include)} files")
    if not any(f.split == "train" for f in files):
        raise DatasetError(f"no image under {str(source)!r} fell in the train split; add "
                           "images or lower val_fraction/test_fraction")
    ordered = sorted(files, key=lambda f: (SPLITS.index(f.split),
                                           order_key(f.path, options.seed), f.path))
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    entries: list[tuple[str, int, str]] = []
    splits, corrupt, (mean, std) = _write_splits(Path(source), dest, ordered, classes, options,
                                                 entries)
    manifest = {
        "format": FORMAT, "classes": classes,
        "class_to_idx": {name: i for i, name in enumerate(classes)},
        "image_size": list(options.image_size), "channels": 1 if options.grayscale else 3,
        "layout": "NCHW", "dtype": "uint8", "mean": mean, "std": std,
        "resize": options.resize, "split_layout": layout, "include": list(options.include),
        "seed": options.seed, "val_fraction": options.val_fraction,
        "test_fraction": options.test_fraction,
        "counts": {name: split["count"] for name, split in splits.items()},
        "total_files": len(files), "splits": splits,
        "corrupt": sorted(corrupt, key=lambda c: c["path"]), "corrupt_count": len(corrupt),
    }
    text = (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode()
    (dest / MANIFEST_NAME).write_bytes(text)
    entries.append((MANIFEST_NAME, len(text), hashlib.sha256(text).hexdigest()))
    return manifest, sorted(entries)


def _write_splits(source: Path, dest: Path, ordered: list[ImageFile], classes: list[str],
                  options: PreprocessOptions, entries: list[tuple[str, int, str]]
                  ) -> tuple[dict[str, Any], list[dict[str, Any]], tuple[list[float], ...]]:
    """Decode ``ordered`` (split by split) into shards; the splits, corrupt files, stats.

    Each shard written is added to ``entries`` as ``(relpath, size, sha256)``.
    """
    import numpy as np

    channels = 1 if options.grayscale else 3
    capacity = max(1, min(options.shard_size,
                          int(options.shard_mb * 2**20) // options.image_bytes))
    index = {name: i for i, name in enumerate(classes)}
    labels = {f.path: index[f.label] for f in ordered}
    splits: dict[str, dict[str, Any]] = {
        name: {"count": 0, "shards": [], "shard_counts": [], "files": []} for name in SPLITS}
    histogram = np.zeros((channels, 256), dtype=np.int64)
    corrupt: list[dict[str, Any]] = []
    for result in _run_jobs(source, dest, _shard_jobs(ordered, capacity), len(ordered),
                            options):
        for path, sha, error in result.corrupt:
            if options.on_corrupt == "fail":
                raise CorruptImageError(path, error)
            corrupt.append({"path": path, "sha256": sha, "error": error})
        if result.shard is None:
            continue
        split = splits[result.job.split]
        split["shards"].append(result.shard)
        entries.append((result.shard, result.size, result.sha256))
        split["shard_counts"].append(len(result.decoded))
        split["count"] += len(result.decoded)
        split["files"] += [{"path": path, "sha256": sha, "label": labels[path]}
                           for path, sha in result.decoded]
        if result.histogram is not None:
            histogram += result.histogram
    if not splits["train"]["count"]:
        raise DatasetError(f"no decodable image under {str(source)!r} in the train split")
    levels = np.arange(256, dtype=np.int64)
    height, width = options.image_size
    return splits, corrupt, _stats(histogram @ levels, histogram @ levels**2,
                                   splits["train"]["count"] * height * width)


def _stats(sums: Any, squares: Any, count: int) -> tuple[list[float], list[float]]:
    """Mean and std per channel, scaled to 0..1, from integer sums of levels and squares."""
    means, stds = [], []
    for s1, s2 in zip(sums.tolist(), squares.tolist(), strict=True):
        mean = s1 / count
        means.append(mean / 255.0)
        stds.append(max(s2 / count - mean * mean, 0.0) ** 0.5 / 255.0)
    return means, stds


def channel_stats(pixels: np.ndarray) -> tuple[list[float], list[float]]:
    """Per-channel mean and std of uint8 NCHW ``pixels`` scaled to 0..1 (exact integer sums)."""
    import numpy as np

    count = pixels.shape[0] * pixels.shape[2] * pixels.shape[3]
    total = pixels.sum(axis=(0, 2, 3), dtype=np.uint64)
    squares = (pixels.astype(np.uint64) ** 2).sum(axis=(0, 2, 3), dtype=np.uint64)
    return _stats(total, squares, count)


def normalise(x: torch.Tensor, mean: list[float], std: list[float]) -> torch.Tensor:
    """uint8 NCHW pixels to float32 scaled to 0..1 and normalised per channel."""
    from mlpipe.ml.shards import Normalise

    return Normalise(mean, std)(x)


def read_manifest(dataset_dir: Path) -> dict[str, Any]:
    """The manifest of the data set in ``dataset_dir``."""
    path = Path(dataset_dir) / MANIFEST_NAME
    if not path.is_file():
        raise DatasetError(f"{str(path)!r} does not exist; is {str(dataset_dir)!r} a data set "
                           "written by ImagePreprocessOperator?")
    manifest: dict[str, Any] = json.loads(path.read_text())
    return manifest


def load_split(dataset_dir: Path, split: str
               ) -> tuple[torch.Tensor, torch.Tensor, dict[str, Any]]:
    """One whole split in memory, normalised (small data sets and tests; training streams).

    Returns:
        ``x`` float32 NCHW normalised with the manifest's train mean/std, ``y`` int64
        labels (indices into ``manifest["classes"]``), and the manifest.
    """
    pixels, y, manifest = load_split_pixels(dataset_dir, split)
    return normalise(pixels, manifest["mean"], manifest["std"]), y, manifest


def load_split_pixels(dataset_dir: Path, split: str
                      ) -> tuple[torch.Tensor, torch.Tensor, dict[str, Any]]:
    """One whole split as stored: uint8 NCHW pixels, int64 labels and the manifest."""
    import numpy as np
    import torch

    from mlpipe.ml.shards import ShardDataset

    dataset = ShardDataset(dataset_dir, split)
    c, (h, w) = int(dataset.manifest["channels"]), dataset.manifest["image_size"]
    arrays = [np.asarray(dataset.open_shard(i)) for i in range(len(dataset.shards))]
    x = torch.from_numpy(np.concatenate(arrays)) if arrays \
        else torch.empty((0, c, h, w), dtype=torch.uint8)
    return x, torch.tensor(dataset.targets, dtype=torch.long), dataset.manifest
