"""``ImagePreprocessOperator``: class-per-folder images in, a tensor data set artifact out.

Importing this module loads neither torch, Pillow nor numpy: the heavy parts of
``mlpipe.ml`` are imported inside ``execute`` (``images`` and ``splits`` import none).
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

from mlpipe.core.artifact import Artifact, ArtifactKind
from mlpipe.core.operator import BaseOperator, Context
from mlpipe.errors import DagDefinitionError, TaskError
from mlpipe.ml.images import MAX_PIXELS, RESIZE_MODES
from mlpipe.ml.splits import DEFAULT_INCLUDE, SPLIT_MODES
from mlpipe.operators.artifact_args import uri_of

__all__ = ["ImagePreprocessOperator"]

log = logging.getLogger("mlpipe.task")

ON_CORRUPT = ("fail", "skip")



class ImagePreprocessOperator(BaseOperator):
    """Decode, resize and split class-per-folder images into uint8 shards, streamed.

    The output (``<artifact_prefix>dataset/``) holds ``manifest.json`` and uint8 ``.npy``
    shards per split, written as they fill; read it with ``mlpipe.ml.shards.ShardDataset``.
    Peak memory is bounded by the shard size and the workers, not the number of images.
    User ``train/ val/ test/`` folders are used as given; otherwise a file's split comes
    from a hash of its relative path and ``seed`` (stable when images are added; see
    ``mlpipe.ml.splits``). Mean/std come from the train split only. Undecodable files and
    images above ``max_pixels`` are skipped, logged and counted in the manifest, or fail the
    task with ``on_corrupt="fail"``. Caching is on by default: the same input artifact and
    arguments reuse the data set already written.

    Args:
        task_id: The task's id.
        input_uri: An ``Artifact`` or URI (``file:///...``, ``s3://...``) of a directory
            with one folder per class (PNG, JPEG, WebP...; grayscale or colour).
        image_size: Output (height, width); an int means a square.
        grayscale: One channel instead of three (RGB).
        val_fraction: Share of files in the validation split.
        test_fraction: Share of files in the test split.
        seed: Changes which files land in which split.
        num_workers: Decoding processes; None uses every CPU, 0 or 1 decodes in-process.
            At most one worker per 2,500 files is started (a cold pool costs 1-2 s).
        on_corrupt: ``"skip"`` or ``"fail"``.
        resize: ``"shorter_side"`` (keep the aspect ratio, center-crop) or ``"stretch"``.
        include: Globs on the file name (case-insensitive).
        split: ``"auto"``, ``"folders"`` (train/ val/ test/) or ``"hash"``.
        shard_size: At most this many images per shard file.
        shard_mb: At most this many MB per shard file (bounds the memory used).
        max_pixels: Larger images (by their header) are treated as corrupt.
        cache: Reuse a recorded output when nothing changed.
    """

    template_fields: ClassVar[Sequence[str]] = (
        "input_uri", "image_size", "grayscale", "val_fraction", "test_fraction", "seed",
        "on_corrupt", "shard_size", "resize", "split",
    )
    ui_color = "#d6eaff"
    operator_version = "3"  # 3: streamed .npy shards, aspect-preserving resize, path splits

    def __init__(
        self,
        task_id: str,
        input_uri: Artifact | str | Any,
        image_size: int | tuple[int, int] = (32, 32),
        grayscale: bool = False,
        val_fraction: float = 0.2,
        test_fraction: float = 0.1,
        seed: int = 0,
        num_workers: int | None = None,
        on_corrupt: str = "skip",
        shard_size: int = 1024,
        resize: str = "shorter_side",
        include: str | Sequence[str] = DEFAULT_INCLUDE,
        split: str = "auto",
        shard_mb: float = 64.0,
        max_pixels: int = MAX_PIXELS,
        *,
        cache: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(task_id, cache=cache, **kwargs)
        self.input_uri = input_uri
        self.image_size = (image_size, image_size) if isinstance(image_size, int) \
            else tuple(image_size)
        self.grayscale = grayscale
        self.val_fraction = val_fraction
        self.test_fraction = test_fraction
        self.seed = seed
        self.num_workers = num_workers
        self.on_corrupt = on_corrupt
        self.shard_size = shard_size
        self.resize = resize
        self.include = (include,) if isinstance(include, str) else tuple(include)
        self.split = split
        self.shard_mb = shard_mb
        self.max_pixels = max_pixels
        problem = argument_problem(self)
        if problem:
            raise DagDefinitionError(f"ImagePreprocessOperator {self.task_id!r}: {problem}")

    def execute(self, context: Context) -> Artifact:
        """Preprocess the input directory; return the data set ``Artifact``."""
        from mlpipe.ml.preprocess import PreprocessOptions

        prefix = context.get("artifact_prefix")
        if not prefix:
            raise TaskError(f"task {self.task_id!r} has no artifact_prefix in its context; "
                            "run it through a DAG run (dag.test() or the scheduler)")
        source_uri = uri_of(self.input_uri)
        options = PreprocessOptions(
            image_size=(int(self.image_size[0]), int(self.image_size[1])),
            grayscale=bool(self.grayscale), val_fraction=float(self.val_fraction),
            test_fraction=float(self.test_fraction), seed=int(self.seed),
            num_workers=self.num_workers, on_corrupt=str(self.on_corrupt),
            shard_size=int(self.shard_size), resize=str(self.resize), include=self.include,
            split=str(self.split), shard_mb=float(self.shard_mb),
            max_pixels=int(self.max_pixels))
        out_uri = f"{prefix}dataset/"
        with tempfile.TemporaryDirectory(prefix="mlpipe-preprocess-") as tmp:
            source = _local_dir(source_uri, Path(tmp) / "input")
            log.info("Preprocessing images under %s into %s (size %s, %s)", source_uri, out_uri,
                     options.image_size, "grayscale" if options.grayscale else "RGB")
            manifest, stat = _preprocess_into_store(source, out_uri, Path(tmp), options)
        log.info("Wrote %s: %d classes, split counts %s", out_uri, len(manifest["classes"]),
                 manifest["counts"])
        return Artifact(uri=out_uri, kind=ArtifactKind.DATASET, sha256=stat.sha256, size=stat.size,
                        extra={"classes": manifest["classes"], "counts": manifest["counts"],
                               "corrupt_count": manifest["corrupt_count"],
                               "source": source_uri})


def _preprocess_into_store(source: Path, out_uri: str, scratch: Path, options: Any
                           ) -> tuple[dict[str, Any], Any]:
    """Preprocess ``source`` into the store at ``out_uri``; the manifest and the tree's stat.

    A file store gets the data set written in a temp sibling of its folder and renamed into
    place, hashed as the workers wrote it (a data set of 224 px images is gigabytes: no
    second copy and no re-read). Other stores get it uploaded from ``scratch``.
    """
    from mlpipe.artifacts import FileArtifactStore, localfs, open_store
    from mlpipe.ml.preprocess import preprocess_tree

    store = open_store(out_uri)
    if not isinstance(store, FileArtifactStore):
        manifest, _ = preprocess_tree(source, scratch / "dataset", options)
        _log_corrupt(manifest)
        return manifest, store.put_dir(scratch / "dataset", out_uri)
    final = store.path_of(out_uri)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = localfs.temp_sibling(final)
    try:
        manifest, entries = preprocess_tree(source, tmp, options)
        _log_corrupt(manifest)
        localfs.replace_path(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return manifest, localfs.tree_stat(entries)


def argument_problem(op: ImagePreprocessOperator) -> str | None:
    """What is wrong with the operator's arguments, or None (checked when the DAG is built)."""
    size = op.image_size
    if len(size) != 2 or not all(isinstance(v, int) and v > 0 for v in size):
        return f"image_size must be two ints > 0 (height, width), got {size!r}"
    if op.on_corrupt not in ON_CORRUPT:
        return f"on_corrupt {op.on_corrupt!r} is not one of {list(ON_CORRUPT)}"
    fractions = (op.val_fraction, op.test_fraction)
    if not all(isinstance(v, int | float) for v in fractions) \
            or min(fractions) < 0 or sum(fractions) >= 1:
        return (f"val_fraction {op.val_fraction!r} and test_fraction {op.test_fraction!r} must "
                "be numbers >= 0 that leave a share for training (sum < 1)")
    if op.num_workers is not None and (not isinstance(op.num_workers, int)
                                       or op.num_workers < 0):
        return f"num_workers must be None or an int >= 0, got {op.num_workers!r}"
    if not isinstance(op.shard_size, int) or op.shard_size < 1:
        return f"shard_size must be an int >= 1, got {op.shard_size!r}"
    return _mode_problem(op)


def _mode_problem(op: ImagePreprocessOperator) -> str | None:
    if op.resize not in RESIZE_MODES:
        return f"resize {op.resize!r} is not one of {list(RESIZE_MODES)}"
    if op.split not in SPLIT_MODES:
        return f"split {op.split!r} is not one of {list(SPLIT_MODES)}"
    if not op.include or not all(isinstance(p, str) and p for p in op.include):
        return f"include must be one or more non-empty globs, got {op.include!r}"
    if not isinstance(op.shard_mb, int | float) or op.shard_mb <= 0:
        return f"shard_mb must be a number > 0, got {op.shard_mb!r}"
    if not isinstance(op.max_pixels, int) or op.max_pixels < 1:
        return f"max_pixels must be an int >= 1, got {op.max_pixels!r}"
    return None


def _local_dir(uri: str, scratch: Path) -> Path:
    """The input directory on local disk: itself for ``file://``, else a download."""
    from mlpipe.artifacts import FileArtifactStore, open_store

    store = open_store(uri)
    if isinstance(store, FileArtifactStore):
        path = store.path_of(uri)
        if not path.is_dir():
            raise TaskError(f"input_uri {uri!r} is not a directory; expected one folder of "
                            "images per class")
        return path
    return store.get_dir(uri, scratch)


def _log_corrupt(manifest: dict[str, Any]) -> None:
    corrupt = manifest["corrupt"]
    if corrupt:
        log.warning("Skipped %d corrupt image file(s) of %d: %s", len(corrupt),
                    manifest["total_files"],
                    "; ".join(f"{c['path']} ({c['error']})" for c in corrupt))
