"""``S3DownloadOperator``: an S3 prefix mirrored into a local dataset folder.

The download mirrors a prefix into a local dataset folder with a ``manifest.json`` (key,
ETag, size, sha256, path per object). With ``incremental`` only new or changed objects
(ETag or size differ) are fetched and files of vanished keys are removed, so the folder is
a stable mirror across runs (``S3UploadOperator`` is in ``s3_upload``). boto3 is used only
through ``mlpipe.hooks`` and ``mlpipe.artifacts``: importing this module loads neither.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import logging
import os
import stat
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlparse
from urllib.request import url2pathname

from mlpipe.artifacts import Artifact, ArtifactKind, localfs, manifest_hash
from mlpipe.core.operator import BaseOperator, Context
from mlpipe.errors import (
    ConnectionFailedError,
    HookError,
    S3BucketNotFoundError,
    S3CredentialsError,
    S3EmptyPrefixError,
    S3OperatorError,
)
from mlpipe.hooks.s3 import S3Hook, credentials_for
from mlpipe.operators.transfer_progress import TransferProgress
from mlpipe.s3.urls import S3UriError, split_s3_uri

__all__ = [
    "S3BucketNotFoundError",
    "S3CredentialsError",
    "S3DownloadOperator",
    "S3EmptyPrefixError",
    "S3OperatorError",
]

log = logging.getLogger("mlpipe.task")

MANIFEST = "manifest.json"
_MANIFEST_FIELDS = ("etag", "key", "path", "sha256", "size")
MAX_SOURCES = 10_000  # lineage rows per output; beyond this the list is marked truncated


def split_s3(url: str, *, what: str) -> tuple[str, str]:
    """``s3://bucket/prefix`` -> ``("bucket", "prefix")``; anything else raises."""
    try:
        return split_s3_uri(url, what=what)
    except S3UriError as exc:
        raise S3OperatorError(str(exc)) from None


def dir_prefix(prefix: str) -> str:
    """``prefix`` ending with ``/`` (``""`` stays the bucket's root)."""
    return prefix if not prefix or prefix.endswith("/") else prefix + "/"


class S3DownloadOperator(BaseOperator):
    """Mirror ``s3://bucket/prefix/`` into a local dataset folder; returns its ``Artifact``.

    Args:
        task_id: The task's id.
        source: ``s3://bucket/prefix/`` (templated); the layout below it is kept.
        dest: Local folder (templated). Default: ``<artifact root>/<dag_id>/datasets/
            <task_id>``, the same folder every run, so ``incremental`` can reuse files.
        aws_conn_id: The AWS connection (``MLPIPE_CONN_AWS_DEFAULT`` or the metadata DB).
        include: Glob(s) a key's relative path or file name must match, e.g. ``"*.png"``.
        max_workers: Parallel downloads (and the client's connection pool size).
        incremental: Skip objects whose ETag and size match the previous manifest.

    ``cache`` is always off: the bucket is the input and is listed on every run;
    ``incremental`` is this operator's cache.
    """

    template_fields: ClassVar[Sequence[str]] = ("source", "dest")
    ui_color: ClassVar[str] = "#c5e1f5"

    def __init__(self, task_id: str, source: str, dest: str | None = None, *,
                 aws_conn_id: str = "aws_default", include: str | Sequence[str] | None = None,
                 max_workers: int = 16, incremental: bool = True, **kwargs: Any) -> None:
        kwargs["cache"] = False
        super().__init__(task_id, **kwargs)
        self.source = source
        self.dest = dest
        self.aws_conn_id = aws_conn_id
        self.include = [include] if isinstance(include, str) else list(include or [])
        self.max_workers = max(1, int(max_workers))
        self.incremental = incremental

    def execute(self, context: Context) -> Artifact:
        bucket, prefix = split_s3(self.source, what="source")
        prefix = dir_prefix(prefix)
        root = Path(self.dest) if self.dest else default_dataset_dir(context, self.task_id)
        root.mkdir(parents=True, exist_ok=True)
        hook = S3Hook(self.aws_conn_id, max_pool_connections=self.max_workers)
        objects = self._list(hook, bucket, prefix)
        with _locked(root):
            # also without incremental: to remove stale files
            previous, raw_manifest = load_manifest(root)
            known = previous if self.incremental else {}
            fetch = {rel for rel, obj in objects.items()
                     if not _unchanged(root, rel, obj, known)}
            entries = {rel: previous[rel] for rel in objects if rel not in fetch}
            log.info("s3://%s/%s: %d object(s), %d to download into %s", bucket, prefix,
                     len(objects), len(fetch), root)
            try:
                self._download(hook, bucket, root, [objects[r] for r in sorted(fetch)], entries)
            except BaseException:
                # Keep what arrived: a rerun only fetches the rest.
                write_manifest(root, self.source, {**_still_present(root, previous),
                                                   **entries})
                raise
            removed = _remove_vanished(root, set(previous) - set(objects))
            manifest = _same_manifest(raw_manifest, self.source, entries, previous) \
                or write_manifest(root, self.source, entries)
        log.info("downloaded %d, skipped %d (unchanged), removed %d",
                 len(fetch), len(objects) - len(fetch), removed)
        counts = {"objects": len(objects), "downloaded": len(fetch),
                  "skipped": len(objects) - len(fetch), "removed": removed}
        return _dataset_artifact(root, bucket, self.source, entries, manifest, counts)

    def _list(self, hook: S3Hook, bucket: str, prefix: str) -> dict[str, dict[str, Any]]:
        """The objects to mirror, by relative path (folder markers and non-matches left out)."""
        where = f"s3://{bucket}/{prefix} (connection {self.aws_conn_id!r}"
        try:
            listed = hook.list_objects(bucket, prefix)
        except ConnectionFailedError as exc:
            raise S3CredentialsError(
                f"cannot list {where}, endpoint {exc.endpoint}): {exc.reason}; check the "
                "connection's access key id, secret and endpoint_url",
                bucket=bucket, prefix=prefix, conn_id=self.aws_conn_id) from None
        except HookError as exc:
            if ": NoSuchBucket:" in exc.reason:
                raise S3BucketNotFoundError(
                    f"bucket {bucket!r} does not exist at {exc.endpoint}; cannot list {where}); "
                    "create the bucket or fix source=",
                    bucket=bucket, prefix=prefix, conn_id=self.aws_conn_id) from None
            raise S3OperatorError(f"cannot list {where}): {exc.reason}", bucket=bucket,
                                  prefix=prefix, conn_id=self.aws_conn_id) from None
        objects: dict[str, dict[str, Any]] = {}
        for obj in listed:
            key = str(obj["Key"])
            rel = key[len(prefix):]
            if not rel or key.endswith("/") or not self._included(rel):
                continue
            if rel == MANIFEST or localfs.is_temp_name(rel.rsplit("/", 1)[-1]):
                log.warning("skipping s3://%s/%s: the name is reserved locally", bucket, key)
                continue
            _check_inside(rel, key)
            objects[rel] = {"key": key, "etag": str(obj.get("ETag", "")).strip('"'),
                            "size": int(obj.get("Size", 0)), "path": rel}
        if not objects:
            filters = f" matching {self.include}" if self.include else ""
            raise S3EmptyPrefixError(
                f"no objects{filters} under {where}); check the prefix"
                + (" and include=" if self.include else ""),
                bucket=bucket, prefix=prefix, conn_id=self.aws_conn_id)
        return objects

    def _included(self, rel: str) -> bool:
        name = rel.rsplit("/", 1)[-1]
        return not self.include or any(fnmatch.fnmatchcase(rel, pattern)
                                       or fnmatch.fnmatchcase(name, pattern)
                                       for pattern in self.include)

    def _download(self, hook: S3Hook, bucket: str, root: Path, objects: list[dict[str, Any]],
                  entries: dict[str, dict[str, Any]]) -> None:
        """Fetch ``objects`` in parallel; add each finished one to ``entries``."""
        if not objects:
            return
        hook.get_conn()  # create the (thread-safe) client once, before the threads share it
        total = sum(int(obj["size"]) for obj in objects)
        with ThreadPoolExecutor(self.max_workers, thread_name_prefix="s3-download") as pool, \
                TransferProgress("downloaded", len(objects), total, log) as progress:
            futures: dict[Future[dict[str, Any]], str] = {
                pool.submit(_fetch, hook, bucket, root, obj): obj["path"] for obj in objects}
            for future in as_completed(futures):
                error = future.exception()
                if error is not None:
                    for other in futures:
                        other.cancel()
                    raise self._download_error(error, bucket) from None
                entry = future.result()
                entries[futures[future]] = entry
                progress.advance(int(entry["size"]))

    def _download_error(self, error: BaseException, bucket: str) -> BaseException:
        if isinstance(error, ConnectionFailedError):
            return S3CredentialsError(f"download from s3://{bucket} (connection "
                                      f"{self.aws_conn_id!r}) failed: {error.reason}",
                                      bucket=bucket, conn_id=self.aws_conn_id)
        if isinstance(error, HookError):
            return S3OperatorError(f"download from s3://{bucket} (connection "
                                   f"{self.aws_conn_id!r}) failed: {error.reason}",
                                   bucket=bucket, conn_id=self.aws_conn_id)
        return error


def _dataset_artifact(root: Path, bucket: str, source: str,
                      entries: Mapping[str, Mapping[str, Any]], manifest: tuple[int, str],
                      counts: Mapping[str, int]) -> Artifact:
    """The folder's reference: hashed as the file store hashes it (manifest.json included)."""
    sources = [{"uri": f"s3://{bucket}/{e['key']}", "etag": e["etag"], "size": e["size"],
                "version_id": None} for e in sorted(entries.values(), key=lambda e: e["key"])]
    extra: dict[str, Any] = {**counts, "source": source, "sources": sources[:MAX_SOURCES]}
    if len(sources) > MAX_SOURCES:
        extra["sources_truncated"] = True
    tree = [(rel, str(e["sha256"])) for rel, e in entries.items()] + [(MANIFEST, manifest[1])]
    size = sum(int(e["size"]) for e in entries.values()) + manifest[0]
    return Artifact(uri=root.resolve().as_uri(), kind=ArtifactKind.DATASET,
                    sha256=manifest_hash(tree), size=size, extra=extra)


def _fetch(hook: S3Hook, bucket: str, root: Path, obj: dict[str, Any]) -> dict[str, Any]:
    rel = str(obj["path"])
    # One GET per object, hashed while written (temp file + rename).
    size, sha, etag = hook.fetch_object(obj["key"], bucket, root / rel)
    return {**obj, "size": size, "sha256": sha, "path": rel, "etag": etag or obj["etag"]}


def _check_inside(rel: str, key: str) -> None:
    parts = rel.split("/")
    if rel.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise S3OperatorError(f"key {key!r} cannot be mapped to a local path (empty, '.' or "
                              "'..' segments); rename the object")


def _unchanged(root: Path, rel: str, obj: Mapping[str, Any],
               previous: Mapping[str, Mapping[str, Any]]) -> bool:
    """True if the previous run fetched the same object and the local file is still there."""
    old = previous.get(rel)
    if not old or old.get("key") != obj["key"] or old.get("etag") != obj["etag"] \
            or old.get("size") != obj["size"]:
        return False
    try:  # one stat on a plain string: this runs once per object on every run
        info = os.stat(os.path.join(root, rel))
    except OSError:
        return False
    return stat.S_ISREG(info.st_mode) and info.st_size == obj["size"]


def _same_manifest(raw: tuple[str, bytes] | None, source: str,
                   entries: Mapping[str, Mapping[str, Any]],
                   previous: Mapping[str, Mapping[str, Any]]) -> tuple[int, str] | None:
    """Size and sha256 of the manifest read before (``raw``: its source and bytes) if it
    already says exactly ``entries``: a run that changed nothing need not encode, rewrite
    and fsync it. None if it must be written."""
    if raw is None or raw[0] != source or len(entries) != len(previous) \
            or any(previous.get(rel) != _manifest_fields(e) for rel, e in entries.items()):
        return None
    return len(raw[1]), hashlib.sha256(raw[1]).hexdigest()


def _manifest_fields(entry: Mapping[str, Any]) -> dict[str, Any]:
    return {k: entry[k] for k in _MANIFEST_FIELDS}


def _still_present(root: Path, previous: Mapping[str, dict[str, Any]]
                   ) -> dict[str, dict[str, Any]]:
    return {rel: e for rel, e in previous.items() if (root / rel).is_file()}


def _remove_vanished(root: Path, vanished: set[str]) -> int:
    """Delete the local files of keys that are gone, and folders left empty."""
    for rel in sorted(vanished):
        path = root / rel
        path.unlink(missing_ok=True)
        for parent in path.parents:
            if parent == root or not parent.is_relative_to(root):
                break
            try:
                parent.rmdir()
            except OSError:  # not empty
                break
    return len(vanished)


def read_manifest(root: Path) -> dict[str, dict[str, Any]]:
    """The previous manifest's objects by relative path; ``{}`` if none or unreadable."""
    return load_manifest(root)[0]


def load_manifest(root: Path) -> tuple[dict[str, dict[str, Any]], tuple[str, bytes] | None]:
    """:func:`read_manifest` plus the manifest's source and bytes (None if unreadable)."""
    try:
        raw = (root / MANIFEST).read_bytes()
        data = json.loads(raw)
        objects = {str(o["path"]): dict(o) for o in data["objects"]}
    except (OSError, ValueError, KeyError, TypeError):
        return {}, None
    return objects, ((str(data.get("source")), raw) if data.get("version") == 1 else None)


def write_manifest(root: Path, source: str, entries: Mapping[str, Mapping[str, Any]]
                   ) -> tuple[int, str]:
    """Atomically write ``manifest.json`` (deterministic bytes); returns size and sha256."""
    objects = [_manifest_fields(entries[rel]) for rel in sorted(entries)]
    text = json.dumps({"version": 1, "source": source, "objects": objects}, indent=1,
                      sort_keys=True)
    return localfs.write_chunks_atomic(root / MANIFEST, [text.encode()])


@contextmanager
def _locked(root: Path) -> Iterator[None]:
    """One writer per dataset folder (two runs of a DAG may download at once)."""
    import fcntl  # POSIX only; imported here so the module imports everywhere

    with open(root.parent / f".{root.name}.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def default_dataset_dir(context: Context, task_id: str) -> Path:
    """``<artifact root>/<dag_id>/datasets/<task_id>[/<map_index>]``: the same every run."""
    prefix = context.get("artifact_prefix")
    if not isinstance(prefix, str) or not prefix.startswith("file://"):
        raise S3OperatorError(
            f"task {task_id!r} has no local artifact folder (artifact_prefix={prefix!r}); "
            "pass dest= a local folder")
    task_dir = Path(url2pathname(urlparse(prefix).path))
    map_index = int(context.get("map_index", -1))
    dag_dir = task_dir.parents[2 if map_index >= 0 else 1]  # drop [map]/task/run levels
    folder = dag_dir / "datasets" / task_id
    return folder / str(map_index) if map_index >= 0 else folder


def store_options(conn_id: str, *, max_workers: int = 16) -> dict[str, Any]:
    """``S3ArtifactStore`` keyword arguments from an AWS connection (what its hook uses)."""
    return {"credentials": credentials_for(conn_id), "max_workers": max_workers}


def __getattr__(name: str) -> Any:
    if name == "S3UploadOperator":  # lives in s3_upload; importable from here as before
        from mlpipe.operators.s3_upload import S3UploadOperator

        return S3UploadOperator
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
