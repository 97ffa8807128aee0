"""How files and directories are laid out as S3 objects, and moving whole trees.

``s3://bucket/key`` is one object; a directory ``s3://bucket/key/`` is every object under
the prefix ``key/``. S3 cannot rename a prefix, so a directory being written carries the
marker object ``key/.mlpipe-incomplete`` until its last file is in; readers treat a
directory with the marker (and everything under it) as absent.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Any

from mlpipe.artifacts import localfs
from mlpipe.errors import ArtifactError
from mlpipe.s3 import urls
from mlpipe.s3.transfer import download_files, upload_files

__all__ = [
    "INCOMPLETE_MARKER",
    "S3Object",
    "dir_prefix",
    "download_tree",
    "hidden_name",
    "split_s3_uri",
    "upload_tree",
    "visible_objects",
]

INCOMPLETE_MARKER = ".mlpipe-incomplete"

#: ``(key, size)`` of one listed object.
S3Object = tuple[str, int]


def split_s3_uri(uri: str) -> tuple[str, str]:
    """``(bucket, key)`` of ``s3://bucket/key`` (the shared parser; an ``ArtifactError``)."""
    try:
        return urls.split_s3_uri(uri)
    except urls.S3UriError as exc:
        raise ArtifactError(str(exc), uri=uri) from None


dir_prefix = urls.dir_prefix


def hidden_name(key: str) -> bool:
    """True for the marker and temp names, which are never part of an artifact."""
    name = key.rstrip("/").rsplit("/", 1)[-1]
    return name == INCOMPLETE_MARKER or localfs.is_temp_name(name)


def visible_objects(objects: list[S3Object]) -> list[S3Object]:
    """``objects`` minus markers, temp names and whatever is under an incomplete directory."""
    incomplete = [k[: -len(INCOMPLETE_MARKER)] for k, _ in objects
                  if k.rsplit("/", 1)[-1] == INCOMPLETE_MARKER]
    return [(k, size) for k, size in objects
            if not hidden_name(k) and not any(k.startswith(p) for p in incomplete)]


def upload_tree(client: Any, config: Any, source: Path, bucket: str, prefix: str,
                entries: list[localfs.TreeEntry]) -> None:
    """Upload every entry of ``source`` under ``prefix``, in parallel, sha256 as metadata."""
    upload_files(client, config, [(str(source / rel), bucket, prefix + rel,
                                   {"Metadata": {"sha256": sha}}) for rel, _, sha in entries])


def download_tree(client: Any, config: Any, uri: str, bucket: str, prefix: str,
                  objects: list[S3Object], dest: Path) -> None:
    """Download ``objects`` (all under ``prefix``) into ``dest``; unsafe keys refused first."""
    downloads = []
    for key, _ in objects:
        rel = PurePosixPath(key[len(prefix):])
        if rel.is_absolute() or ".." in rel.parts:
            raise ArtifactError(f"{uri!r} holds the unsafe key {key!r}", uri=uri)
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        downloads.append((bucket, key, str(target)))
    download_files(client, config, downloads)
