"""A writer SIGKILLed mid-copy never leaves something that looks like a whole artifact.

Each test starts a real writer process (``writer_process.py``) and kills it while the copy
is provably under way. For the file store the source is a FIFO the test feeds: the writer
has copied megabytes and is blocked waiting for the rest when it is killed, so the timing
is deterministic. For S3 the writer uploads a 20 MiB file in 5 MiB parts at a capped
bandwidth, and is killed once the server holds a part of the unfinished multipart upload.
"""

from __future__ import annotations

import errno
import os
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from artifact_support import BUCKET, start_writer, wait_for, write_tree

from mlpipe.artifacts import ArtifactNotFoundError, FileArtifactStore
from mlpipe.artifacts.localfs import is_temp_name
from mlpipe.artifacts.s3 import S3ArtifactStore

MIB = 1024 * 1024


@contextmanager
def feeding(fifo: Path, writer: subprocess.Popen[bytes], megabytes: int) -> Iterator[None]:
    """Open ``fifo`` once the writer reads it, push ``megabytes`` into it, keep it open."""
    fd = -1

    def opened() -> bool:
        nonlocal fd
        try:
            fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        except OSError as exc:
            if exc.errno != errno.ENXIO:  # ENXIO: no reader yet
                raise
            return False
        return True

    wait_for(opened, "the writer to open the FIFO", process=writer)
    os.set_blocking(fd, True)
    try:
        data = memoryview(os.urandom(MIB) * megabytes)
        while data:  # blocks until the writer has read (nearly) all of it
            data = data[os.write(fd, data):]
        yield
    finally:
        os.close(fd)


def kill(writer: subprocess.Popen[bytes]) -> None:
    writer.send_signal(signal.SIGKILL)
    assert writer.wait(timeout=10) == -signal.SIGKILL


def temp_entries(directory: Path) -> list[Path]:
    return [p for p in directory.iterdir() if is_temp_name(p.name)]


@pytest.mark.parametrize("existing", [None, b"the previous version"])
def test_killed_file_write_leaves_nothing_partial(tmp_path: Path, existing: bytes | None) -> None:
    store = FileArtifactStore()
    target = tmp_path / "store" / "big.bin"
    uri = target.as_uri()
    if existing is not None:
        store.write_bytes(uri, existing)
    fifo = tmp_path / "source.fifo"
    os.mkfifo(fifo)
    writer = start_writer("put_file", fifo, uri)
    with feeding(fifo, writer, megabytes=8):
        wait_for(lambda: any(p.stat().st_size >= 4 * MIB for p in temp_entries(target.parent)),
                 "4 MiB copied to the temp file", process=writer)
        kill(writer)
    assert temp_entries(target.parent), "the kill should have interrupted the copy"
    assert store.list(target.parent.as_uri()) == ([uri] if existing else [])
    if existing is None:
        assert not store.exists(uri)
        assert not target.exists()
    else:
        assert store.read_bytes(uri) == existing


def test_killed_directory_write_leaves_nothing_partial(tmp_path: Path) -> None:
    store = FileArtifactStore()
    source = write_tree(tmp_path / "tree", {f"a{i:02d}.bin": b"x" * 1000 for i in range(30)})
    write_tree(source, {f"z{i:02d}.bin": b"y" * 1000 for i in range(20)})
    os.mkfifo(source / "m_stream.bin")  # copied in sorted order: after a*, before z*
    target = tmp_path / "store" / "dataset"
    writer = start_writer("put_dir", source, target.as_uri())

    def half_copied() -> bool:
        return any(len(list(p.iterdir())) >= 31 for p in temp_entries(target.parent))

    with feeding(source / "m_stream.bin", writer, megabytes=2):
        wait_for(half_copied, "30 files and part of the stream copied", process=writer)
        kill(writer)
    assert not store.exists(target.as_uri())
    assert not target.exists()
    assert store.list(target.parent.as_uri(), recursive=True) == []
    with pytest.raises(ArtifactNotFoundError, match="dataset"):
        store.stat(target.as_uri())


def test_killed_s3_multipart_upload_leaves_no_object(
    tmp_path: Path, s3_store: S3ArtifactStore, s3_options: dict[str, Any]
) -> None:
    source = tmp_path / "big.bin"
    source.write_bytes(os.urandom(MIB) * 20)
    key = f"crash/{tmp_path.name}/big.bin"
    uri = f"s3://{BUCKET}/{key}"
    options = {**s3_options, "max_workers": 1, "multipart_threshold": 5 * MIB,
               "multipart_chunksize": 5 * MIB, "max_bandwidth": 10 * MIB}
    client = s3_store.client

    def upload_ids() -> list[str]:
        listed = client.list_multipart_uploads(Bucket=BUCKET, Prefix=key)
        return [u["UploadId"] for u in listed.get("Uploads", [])]

    def a_part_is_in() -> bool:
        return any(client.list_parts(Bucket=BUCKET, Key=key, UploadId=u).get("Parts")
                   for u in upload_ids())

    writer = start_writer("put_file", source, uri, s3_options=options)
    try:
        wait_for(a_part_is_in, "the first 5 MiB part", process=writer)
        kill(writer)
    finally:
        if writer.poll() is None:
            writer.kill()
    assert not s3_store.exists(uri)
    assert s3_store.list(f"s3://{BUCKET}/crash/{tmp_path.name}") == []
    with pytest.raises(ArtifactNotFoundError, match=uri):
        s3_store.stat(uri)
    dangling = upload_ids()
    assert dangling, "the kill should have interrupted the multipart upload"
    for upload_id in dangling:
        client.abort_multipart_upload(Bucket=BUCKET, Key=key, UploadId=upload_id)
