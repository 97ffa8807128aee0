"""``mlpipe lineage URI``: the chain from an artifact back to its sources."""

from __future__ import annotations

from typing import Any

from mlpipe.errors import ArtifactNotRecordedError
from mlpipe.store.protocols import TryStore


def lineage_tree(store: TryStore, uri: str, *, max_depth: int = 50) -> dict[str, Any]:
    """The artifact at ``uri``, its producer and provenance, and its inputs, recursively.

    Inputs that mlpipe recorded are expanded the same way; other inputs (S3 objects with
    their ETags) are the leaves.
    """
    row = store.artifact_by_uri(uri)
    if row is None:
        raise ArtifactNotRecordedError(
            f"no task recorded an artifact at {uri!r}; 'mlpipe lineage' knows artifacts that "
            "tasks returned as Artifact references")
    return _node(store, row, set(), max_depth)


def _node(store: TryStore, row: dict[str, Any], seen: set[int], depth: int
          ) -> dict[str, Any]:
    seen.add(row["id"])
    node: dict[str, Any] = {
        "uri": row["uri"], "kind": row["kind"], "sha256": row["sha256"], "size": row["size"],
        "producer": {"dag_id": row["dag_id"], "run_id": row["run_id"],
                     "task_id": row["task_id"], "map_index": row["map_index"],
                     "try_number": row["try_number"]},
        "git_commit": row["git_commit"], "config_hash": row["config_hash"],
        "created_at": row["created_at"].isoformat() if row["created_at"] else None,
        "inputs": [],
    }
    for source in store.artifact_inputs(row["id"]):
        recorded = store.artifact_by_uri(source["uri"])
        if recorded is not None and recorded["id"] not in seen and depth > 0:
            child = _node(store, recorded, seen, depth - 1)
        else:
            child = {"uri": source["uri"], "sha256": source["sha256"], "size": source["size"],
                     "etag": source["etag"], "version_id": source["version_id"],
                     "inputs": []}
        node["inputs"].append(child)
    return node
