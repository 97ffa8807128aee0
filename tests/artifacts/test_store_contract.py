"""The contract every ArtifactStore keeps: a new backend is done when it passes these.

Read-side tests run over every store (file, s3, mlflow); write-side tests over the stores
that can write (file, s3).
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest
from artifact_support import Backend, nested_files, write_tree

from mlpipe.artifacts import ArtifactNotFoundError, UnknownSchemeError, open_store
from mlpipe.artifacts.localfs import tree_entries, tree_stat

SMALL = {"a.txt": b"hello", "sub/b.bin": bytes(range(256)), "sub/c/d.txt": b"deep"}


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# -- read side: every store ------------------------------------------------------------


def test_read_a_file(backend: Backend) -> None:
    root = backend.seed(SMALL)
    assert backend.store.read_bytes(f"{root}/a.txt") == b"hello"
    with backend.store.open(f"{root}/sub/b.bin") as stream:
        assert stream.read() == bytes(range(256))


def test_stat_gives_size_and_sha256(backend: Backend) -> None:
    root = backend.seed(SMALL)
    info = backend.store.stat(f"{root}/sub/b.bin")
    assert (info.size, info.sha256) == (256, sha(bytes(range(256))))


def test_exists(backend: Backend) -> None:
    root = backend.seed(SMALL)
    assert backend.store.exists(f"{root}/a.txt")
    assert backend.store.exists(f"{root}/sub")
    assert not backend.store.exists(f"{root}/nope.txt")
    assert not backend.store.exists(f"{root}/sub/nope")


def test_list_children_and_recursive(backend: Backend) -> None:
    root = backend.seed(SMALL)
    assert backend.store.list(root) == [f"{root}/a.txt", f"{root}/sub/"]
    assert backend.store.list(f"{root}/") == [f"{root}/a.txt", f"{root}/sub/"]
    assert backend.store.list(f"{root}/sub") == [f"{root}/sub/b.bin", f"{root}/sub/c/"]
    assert backend.store.list(root, recursive=True) == [
        f"{root}/a.txt", f"{root}/sub/b.bin", f"{root}/sub/c/d.txt"
    ]
    assert backend.store.list(f"{root}/missing") == []


def test_get_dir_of_50_nested_files_keeps_the_manifest(backend: Backend,
                                                      tmp_path: Path) -> None:
    files = nested_files(50)
    expected = tree_stat(tree_entries(write_tree(tmp_path / "expected", files)))
    root = backend.seed(files)
    assert backend.store.stat(root) == expected
    local = backend.store.get_dir(root, tmp_path / "copy")
    assert tree_stat(tree_entries(local)) == expected
    assert len(backend.store.list(root, recursive=True)) == 50


def test_get_file(backend: Backend, tmp_path: Path) -> None:
    root = backend.seed(SMALL)
    local = backend.store.get_file(f"{root}/sub/c/d.txt", tmp_path / "out" / "d.txt")
    assert local.read_bytes() == b"deep"


def test_missing_artifact_raises_naming_the_uri(backend: Backend, tmp_path: Path) -> None:
    root = backend.seed(SMALL)
    missing = f"{root}/nope.bin"
    with pytest.raises(ArtifactNotFoundError, match=re.escape(missing)):
        backend.store.read_bytes(missing)
    with pytest.raises(ArtifactNotFoundError, match=re.escape(missing)):
        backend.store.stat(missing)
    with pytest.raises(ArtifactNotFoundError, match=re.escape(missing)):
        backend.store.get_file(missing, tmp_path / "x")
    with pytest.raises(ArtifactNotFoundError, match=re.escape(f"{root}/nodir")):
        backend.store.get_dir(f"{root}/nodir", tmp_path / "y")


# -- write side: stores that can write -------------------------------------------------


def test_write_bytes_then_read(writable: Backend) -> None:
    uri = f"{writable.root}/model/weights.bin"
    info = writable.store.write_bytes(uri, b"\x00weights\xff")
    assert (info.size, info.sha256) == (9, sha(b"\x00weights\xff"))
    assert writable.store.read_bytes(uri) == b"\x00weights\xff"
    assert writable.store.stat(uri).sha256 == info.sha256


def test_overwrite_replaces_content_and_leaves_no_temp_files(writable: Backend) -> None:
    uri = f"{writable.root}/metrics.json"
    writable.store.write_bytes(uri, b'{"acc": 0.5}')
    writable.store.write_bytes(uri, b'{"acc": 0.9}')
    assert writable.store.read_bytes(uri) == b'{"acc": 0.9}'
    assert writable.store.stat(uri).sha256 == sha(b'{"acc": 0.9}')
    assert writable.store.list(writable.root) == [uri]


def test_put_file(writable: Backend, tmp_path: Path) -> None:
    data = bytes(range(256)) * 4096  # 1 MiB
    source = tmp_path / "big.bin"
    source.write_bytes(data)
    uri = f"{writable.root}/big.bin"
    info = writable.store.put_file(source, uri)
    assert (info.size, info.sha256) == (len(data), sha(data))
    assert writable.store.read_bytes(uri) == data


def test_put_dir_then_get_dir_round_trips_50_files(writable: Backend, tmp_path: Path) -> None:
    source = write_tree(tmp_path / "tree", nested_files(50))
    expected = tree_stat(tree_entries(source))
    assert writable.store.put_dir(source, writable.root) == expected
    assert writable.store.stat(writable.root) == expected
    assert writable.store.exists(writable.root)
    local = writable.store.get_dir(writable.root, tmp_path / "back")
    assert tree_stat(tree_entries(local)) == expected
    assert writable.store.list(writable.root) == [
        f"{writable.root}/level0/", f"{writable.root}/level1/", f"{writable.root}/level2/"
    ]


def test_put_dir_over_a_directory_replaces_it_whole(writable: Backend,
                                                    tmp_path: Path) -> None:
    old = write_tree(tmp_path / "old", {"keep.txt": b"v1", "gone/x.txt": b"old"})
    new = write_tree(tmp_path / "new", {"keep.txt": b"v2", "added.txt": b"new"})
    writable.store.put_dir(old, writable.root)
    info = writable.store.put_dir(new, writable.root)
    assert writable.store.list(writable.root, recursive=True) == [
        f"{writable.root}/added.txt", f"{writable.root}/keep.txt"
    ]
    assert writable.store.read_bytes(f"{writable.root}/keep.txt") == b"v2"
    assert writable.store.stat(writable.root) == info


def test_get_dir_replaces_the_local_directory(writable: Backend, tmp_path: Path) -> None:
    writable.seed(SMALL)
    dest = write_tree(tmp_path / "dest", {"stale.txt": b"from before"})
    writable.store.get_dir(writable.root, dest)
    assert sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file()) == [
        "a.txt", "sub/b.bin", "sub/c/d.txt"
    ]


def test_unknown_scheme_lists_the_known_ones() -> None:
    with pytest.raises(
        UnknownSchemeError,
        match=re.escape("unknown scheme 'gs'; known: ['file', 'models', 'runs', 's3']"),
    ):
        open_store("gs://bucket/key")
