"""``FileArtifactStore`` keeps every path in its place: no ``..``, escaped or not; with a
root, nothing outside it (absolute paths elsewhere, symlinks that lead out)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlpipe.artifacts import ArtifactError, FileArtifactStore, open_store


@pytest.mark.parametrize("tail", ["../escaped.txt", "%2e%2e/escaped.txt", "%2E%2E/escaped.txt",
                                  "sub/./../../escaped.txt", "..%2fescaped.txt"])
def test_dot_segments_are_refused_and_nothing_is_written(tmp_path: Path, tail: str) -> None:
    root = tmp_path / "root"
    root.mkdir()
    uri = f"{root.as_uri()}/{tail}"
    for store in (FileArtifactStore(), open_store(uri), FileArtifactStore(root=root)):
        with pytest.raises(ArtifactError, match=r"refused: it has a '\.' or '\.\.' path"):
            store.write_bytes(uri, b"x")
        with pytest.raises(ArtifactError, match="refused"):
            store.read_bytes(uri)
    assert not (tmp_path / "escaped.txt").exists()


def test_a_root_refuses_absolute_paths_elsewhere(tmp_path: Path) -> None:
    root = tmp_path / "root"
    store = FileArtifactStore(root=root.as_uri())
    outside = (tmp_path / "other.txt").as_uri()
    with pytest.raises(ArtifactError, match="outside the store's root"):
        store.write_bytes(outside, b"x")
    assert not (tmp_path / "other.txt").exists()
    inside = f"{root.as_uri()}/a/b.txt"
    assert store.write_bytes(inside, b"ok").size == 2
    assert store.read_bytes(inside) == b"ok"


def test_a_root_refuses_a_symlink_that_leads_out(tmp_path: Path) -> None:
    root, elsewhere = tmp_path / "root", tmp_path / "elsewhere"
    root.mkdir()
    elsewhere.mkdir()
    (root / "link").symlink_to(elsewhere, target_is_directory=True)
    store = FileArtifactStore(root=root)
    with pytest.raises(ArtifactError, match="outside the store's root"):
        store.write_bytes(f"{root.as_uri()}/link/x.txt", b"x")
    assert list(elsewhere.iterdir()) == []


def test_a_nul_byte_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="NUL byte"):
        FileArtifactStore().write_bytes(f"{tmp_path.as_uri()}/a%00b", b"x")
