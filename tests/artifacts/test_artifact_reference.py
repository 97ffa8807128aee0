"""``Artifact`` references: validation, XCom round trip, manifest hash, artifact prefixes."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest

from mlpipe.artifacts import FileArtifactStore
from mlpipe.core.artifact import (
    Artifact,
    ArtifactKind,
    InvalidArtifactError,
    artifact_prefix,
    manifest_hash,
)
from mlpipe.core.serde import deserialize, serialize

SHA = hashlib.sha256(b"data").hexdigest()


def make(**overrides: object) -> Artifact:
    fields: dict[str, object] = {"uri": "s3://bucket/ds/", "kind": "dataset", "sha256": SHA,
                                 "size": 4, "extra": {"etag": "abc"}}
    fields.update(overrides)
    return Artifact(**fields)  # type: ignore[arg-type]


def test_kind_is_coerced_and_reference_is_hashable() -> None:
    artifact = make()
    assert artifact.kind is ArtifactKind.DATASET
    assert artifact == make(kind=ArtifactKind.DATASET)
    assert len({artifact, make()}) == 1


@pytest.mark.parametrize(("overrides", "message"), [
    ({"kind": "table"}, "unknown artifact kind 'table'; valid: "
                        "['dataset', 'file', 'metrics', 'model']"),
    ({"sha256": "ABC"}, "has sha256 'ABC'; expected 64 lowercase hex digits"),
    ({"size": -1}, "has size -1; expected an int >= 0"),
    ({"size": True}, "has size True"),
    ({"uri": "relative/path"}, "artifact uri 'relative/path' has no scheme"),
])
def test_invalid_references_are_refused(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidArtifactError, match=re.escape(message)):
        make(**overrides)


def test_serde_round_trips_artifacts_anywhere_in_a_value() -> None:
    model = make(uri="models:/classifier/3", kind="model", extra={})
    value = {"inputs": [make(), model], "best": model, "note": "ok"}
    text = serialize(value, what="return_value", max_bytes=48 * 1024)
    assert '"__mlpipe_type__":"artifact"' in text
    restored = deserialize(text)
    assert restored == value
    assert isinstance(restored["best"], Artifact)
    assert restored["inputs"][0].extra == {"etag": "abc"}


def test_from_json_names_missing_fields() -> None:
    with pytest.raises(InvalidArtifactError, match=re.escape("lacks field(s) ['sha256', 'size']")):
        Artifact.from_json({"uri": "file:///x", "kind": "file"})


def test_manifest_hash_is_sha256_over_sorted_relpath_lines() -> None:
    entries = [("b/x.bin", SHA), ("a.txt", "0" * 64)]
    lines = f"a.txt\0{'0' * 64}\nb/x.bin\0{SHA}\n".encode()
    assert manifest_hash(entries) == hashlib.sha256(lines).hexdigest()
    assert manifest_hash(reversed(entries)) == manifest_hash(entries)
    assert manifest_hash([]) == hashlib.sha256(b"").hexdigest()


def test_describe_builds_a_reference_from_the_store(tmp_path: Path) -> None:
    store = FileArtifactStore()
    uri = (tmp_path / "metrics.json").as_uri()
    store.write_bytes(uri, b"data")
    artifact = store.describe(uri, "metrics", extra={"epoch": 3})
    assert artifact == Artifact(uri, ArtifactKind.METRICS, SHA, 4, {"epoch": 3})


@pytest.mark.parametrize(("root", "expected"), [
    ("file:///home/u/.mlpipe/artifacts", "file:///home/u/.mlpipe/artifacts/train/r1/fit/"),
    ("s3://bucket/prefix/", "s3://bucket/prefix/train/r1/fit/"),
    ("s3://bucket", "s3://bucket/train/r1/fit/"),
])
def test_artifact_prefix(root: str, expected: str) -> None:
    assert artifact_prefix(root, "train", "r1", "fit") == expected


def test_artifact_prefix_of_a_mapped_instance_and_a_grouped_task() -> None:
    prefix = artifact_prefix("file:///a", "d", "manual__2024-01-01T00:00:00+00:00", "g.t",
                             map_index=2)
    assert prefix == "file:///a/d/manual__2024-01-01T00:00:00+00:00/g.t/2/"


@pytest.mark.parametrize(("args", "message"), [
    (("file:///a", "d", "", "t"), "run_id '' cannot be an artifact path component"),
    (("file:///a", "d", "r", "a/b"), "task_id 'a/b' cannot be an artifact path component"),
    (("file:///a", "..", "r", "t"), "dag_id '..' cannot be an artifact path component"),
    (("/abs/root", "d", "r", "t"), "artifact root '/abs/root' has no scheme"),
])
def test_artifact_prefix_refuses_unsafe_parts(args: tuple[str, str, str, str],
                                              message: str) -> None:
    with pytest.raises(InvalidArtifactError, match=re.escape(message)):
        artifact_prefix(*args)
