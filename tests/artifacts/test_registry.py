"""Choosing a store by URI scheme; the package's public names; lazy heavy imports."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

import mlpipe.artifacts
from mlpipe.artifacts import (
    ArtifactError,
    ArtifactStoreRegistry,
    FileArtifactStore,
    UnknownSchemeError,
    known_schemes,
    open_store,
)

PUBLIC_NAMES = [
    "Artifact",
    "ArtifactError",
    "ArtifactKind",
    "ArtifactNotFoundError",
    "ArtifactStat",
    "ArtifactStore",
    "ArtifactStoreRegistry",
    "FileArtifactStore",
    "MlflowArtifactStore",
    "S3ArtifactStore",
    "UnknownSchemeError",
    "artifact_prefix",
    "known_schemes",
    "manifest_hash",
    "open_store",
    "register_store",
]


def test_public_names_are_locked() -> None:
    assert mlpipe.artifacts.__all__ == PUBLIC_NAMES
    for name in PUBLIC_NAMES:
        assert getattr(mlpipe.artifacts, name) is not None


def test_importing_the_package_loads_neither_boto3_nor_mlflow() -> None:
    code = ("import sys, json, mlpipe.artifacts; "
            "print(json.dumps([m for m in ('boto3', 'botocore', 'mlflow') if m in sys.modules]))")
    output = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                            text=True).stdout
    assert json.loads(output) == []


def test_open_store_picks_the_backend_by_scheme(tmp_path: Path) -> None:
    assert isinstance(open_store(tmp_path.as_uri()), FileArtifactStore)
    assert known_schemes() == ["file", "models", "runs", "s3"]


@pytest.mark.parametrize(("uri", "message"), [
    ("gs://bucket/key", "unknown scheme 'gs'; known: ['file', 'models', 'runs', 's3']"),
    ("fille:///tmp/x", "unknown scheme 'fille'; known: ['file', 'models', 'runs', 's3']; "
                       "did you mean 'file'?"),
    ("/tmp/relative/path", "'/tmp/relative/path' has no scheme; known: "),
])
def test_unknown_or_missing_scheme(uri: str, message: str) -> None:
    with pytest.raises(UnknownSchemeError, match=re.escape(message)) as caught:
        open_store(uri)
    assert caught.value.uri == uri
    assert isinstance(caught.value, ArtifactError)


def test_a_registry_takes_classes_callables_and_lazy_import_paths(tmp_path: Path) -> None:
    registry = ArtifactStoreRegistry({"local": "mlpipe.artifacts.file:FileArtifactStore"})
    registry.register("LOCAL2", FileArtifactStore)
    registry.register("mem", lambda **options: FileArtifactStore())
    assert registry.schemes() == ["local", "local2", "mem"]
    assert isinstance(registry.open("local:///x"), FileArtifactStore)
    assert isinstance(registry.open("Local2:///x"), FileArtifactStore)
    assert isinstance(registry.open("mem://x"), FileArtifactStore)
    with pytest.raises(UnknownSchemeError, match=re.escape("known: ['local', 'local2', 'mem']")):
        registry.open("s3://bucket/key")


@pytest.mark.parametrize("uri", ["file://relative/x", "file:relative", "file://host/abs"])
def test_file_store_wants_absolute_file_uris(uri: str) -> None:
    with pytest.raises(ArtifactError, match=re.escape(f"{uri!r} is not an absolute file URI")):
        FileArtifactStore().exists(uri)


def test_file_uris_may_name_localhost_and_escape_characters(tmp_path: Path) -> None:
    store = FileArtifactStore()
    target = tmp_path / "with space.txt"
    store.write_bytes(f"file://localhost{tmp_path}/with%20space.txt", b"x")
    assert target.read_bytes() == b"x"
    assert store.exists(target.as_uri())
