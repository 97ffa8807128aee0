"""Recording what tasks produce (lineage) and reusing it when nothing changed (cache).

Every ``Artifact`` a task returns is recorded with its producer, the artifacts it was made
from (the ``Artifact``s among the task's rendered arguments) and, for sources outside
mlpipe, the objects listed in its ``extra["sources"]`` (S3 keys with ETags). A task that
opts in (``cache=True``) first computes a key from its DAG and task ids, its operator class
and version, for Python callables the callable's qualified name and a hash of its source
(bytecode when the source is unavailable), its rendered arguments and its input
artifacts' hashes (a mapped task's instances share a key: the map index is not in it).
If a recorded try with that key left outputs that are still intact, it is marked success
with a "cache hit" line and reuses them.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import inspect
import json
import logging
import weakref
from collections.abc import Callable, Iterable, Mapping
from types import CodeType
from typing import Any

from mlpipe.core.artifact import Artifact
from mlpipe.core.nested import find_instances
from mlpipe.core.operator import BaseOperator
from mlpipe.store.entities import TIKey
from mlpipe.store.protocols import TryStore
from mlpipe.tracking.provenance import config_hash, dag_folder_commit

log = logging.getLogger("mlpipe.task")

XCOMS_KEY = "_mlpipe_xcoms"  # the producing try's XComs, kept with its artifacts for reuse

Verifier = Callable[[Artifact], bool]


def find_artifacts(value: Any) -> list[Artifact]:
    """Every ``Artifact`` inside ``value`` (lists, tuples, dicts), in order, de-duplicated."""
    unique: dict[tuple[str, str], Artifact] = {}
    for artifact in find_instances(value, Artifact):
        unique.setdefault((artifact.uri, artifact.sha256), artifact)
    return list(unique.values())


def without_sources(value: Any) -> Any:
    """``value`` with every Artifact's ``extra["sources"]`` taken out (kept: a count).

    Source lists (an S3 download's objects with ETags) can be large: lineage records them
    from the task's return value, and XCom carries the slim reference.
    """
    if isinstance(value, Artifact):
        sources = value.extra.get("sources")
        if not sources:
            return value
        extra = {k: v for k, v in value.extra.items() if k != "sources"}
        extra["sources_count"] = len(sources)
        return Artifact(uri=value.uri, kind=value.kind, sha256=value.sha256, size=value.size,
                        extra=extra)
    if isinstance(value, list):
        return [without_sources(v) for v in value]
    if isinstance(value, tuple):
        return tuple(without_sources(v) for v in value)
    if isinstance(value, dict):
        return {k: without_sources(v) for k, v in value.items()}
    return value


def rendered_arguments(op: BaseOperator) -> dict[str, Any]:
    """The operator's templated (rendered, resolved) arguments: what a cache key covers."""
    return {name: getattr(op, name, None) for name in op.template_fields}


def cache_key(op: BaseOperator, arguments: Mapping[str, Any], inputs: Iterable[Artifact]
              ) -> str:
    """sha256 over the task's identity, operator class and version, arguments and inputs.

    The identity is the DAG id and task id and, for an operator that calls a Python
    function (``PythonOperator``, ``@task`` and its variants), that function's qualified
    name and source hash: two tasks never share outputs, and editing a body is a miss.
    """
    function = getattr(op, "python_callable", None)
    payload = {
        "dag_id": op.dag.dag_id if op.dag is not None else None,
        "task_id": op.task_id,
        "operator": f"{type(op).__module__}.{type(op).__qualname__}",
        "version": op.operator_version,
        "callable": callable_fingerprint(function) if callable(function) else None,
        "arguments": arguments,
        "inputs": sorted((a.uri, a.sha256) for a in inputs),
    }
    text = json.dumps(payload, sort_keys=True, default=_stable, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


_fingerprints: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()


def callable_fingerprint(function: Callable[..., Any]) -> str:
    """``module.qualname:sha256`` of ``function``'s source (bytecode+constants without it).

    ``functools.partial`` objects add their bound arguments; decorated functions are
    unwrapped. Names the function reads from globals or closures are not covered.
    Remembered per function object (a mapped task's instances read the source once).
    """
    try:
        return _fingerprints[function]
    except (KeyError, TypeError):  # not seen yet, or not weakly referenceable
        pass
    fingerprint = _fingerprint(function)
    with contextlib.suppress(TypeError):
        _fingerprints[function] = fingerprint
    return fingerprint


def _fingerprint(function: Callable[..., Any]) -> str:
    bound: list[Any] = []
    while isinstance(function, functools.partial):
        bound.append((function.args, sorted(function.keywords.items())))
        function = function.func
    function = inspect.unwrap(function)
    name = f"{getattr(function, '__module__', '')}.{getattr(function, '__qualname__', '')}"
    try:
        body = inspect.getsource(function).encode()
    except (OSError, TypeError):  # built in a string, a REPL, or a compiled module
        code = getattr(function, "__code__", None)
        body = _code_digest(code).encode() if code is not None else repr(function).encode()
    if bound:
        body += repr(bound).encode()
    return f"{name}:{hashlib.sha256(body).hexdigest()}"


def _code_digest(code: CodeType) -> str:
    """sha256 of a code object's bytecode and constants, nested code objects included."""
    digest = hashlib.sha256(code.co_code)
    for const in code.co_consts:
        digest.update(_const_text(const).encode())
    digest.update(repr(code.co_names).encode())
    return digest.hexdigest()


def _const_text(const: Any) -> str:
    if isinstance(const, CodeType):
        return "code:" + _code_digest(const)
    if isinstance(const, frozenset):  # iteration order varies between processes
        return "frozenset:" + repr(sorted(_const_text(c) for c in const))
    if isinstance(const, tuple):
        return "tuple:" + repr([_const_text(c) for c in const])
    return repr(const)


def _stable(value: Any) -> Any:
    if isinstance(value, Artifact):  # identity is location + content, not its notes
        return {"uri": value.uri, "sha256": value.sha256}
    if callable(value):
        return f"{getattr(value, '__module__', '')}.{getattr(value, '__qualname__', value)}"
    return repr(value)


def verify_with_stores(s3_options: Mapping[str, Any] | None = None) -> Verifier:
    """A check that an artifact still exists with the recorded hash (through its store).

    ``runs:/`` and ``models:/`` artifacts are looked up in the configured MLflow store.
    """

    mlflow: dict[str, Any] = {}

    def mlflow_options_once() -> dict[str, Any]:
        if not mlflow:  # read the settings once, on the first MLflow artifact
            from mlpipe.settings import load_settings

            mlflow["tracking_uri"] = load_settings().tracking.tracking_uri
        return mlflow

    def intact(artifact: Artifact) -> bool:
        from mlpipe.artifacts import open_store

        mlflow_options = None
        if artifact.uri.startswith(("runs:/", "models:/")):
            mlflow_options = mlflow_options_once()
        try:
            store = open_store(artifact.uri, s3_options=s3_options,
                               mlflow_options=mlflow_options)
            return store.stat(artifact.uri).sha256 == artifact.sha256
        except Exception:  # missing, unreadable or unknown: not reusable
            return False

    return intact


def lookup(store: TryStore, key: str, verify: Verifier) -> dict[str, Any] | None:
    """The newest try recorded under ``key`` whose outputs are all intact.

    Returns ``{"xcoms": {...}, "artifacts": [...], "producer": "dag/run/task try N"}``.
    """
    rows = store.artifacts_with_cache_key(key)
    tries: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for row in rows:
        producer = (row["dag_id"], row["run_id"], row["task_id"], row["map_index"],
                    row["try_number"])
        tries.setdefault(producer, []).append(row)
    for producer, outputs in tries.items():
        artifacts = [_artifact_of(row) for row in outputs]
        if all(verify(a) for a in artifacts):
            xcoms = outputs[0]["extra"].get(XCOMS_KEY, {})
            return {"xcoms": dict(xcoms), "artifacts": artifacts,
                    "producer": f"{producer[0]}/{producer[1]}/{producer[2]} try {producer[4]}"}
    return None


def _artifact_of(row: Mapping[str, Any]) -> Artifact:
    extra = {k: v for k, v in (row["extra"] or {}).items() if not k.startswith("_mlpipe")}
    return Artifact(uri=row["uri"], kind=row["kind"], sha256=row["sha256"],
                    size=row["size"] or 0, extra=extra)


def record(store: TryStore, key: TIKey, try_number: int, op: BaseOperator,
           outputs: list[Artifact], inputs: list[Artifact], *, cache: str | None,
           xcoms: Mapping[str, str]) -> None:
    """Record the try's output artifacts with their inputs, provenance and cache key."""
    if not outputs:
        return
    sources: list[dict[str, Any]] = [
        {"uri": a.uri, "sha256": a.sha256, "size": a.size,
         "etag": a.extra.get("etag"), "version_id": a.extra.get("version_id")}
        for a in inputs
    ]
    for artifact in outputs:
        for source in artifact.extra.get("sources", []) or []:
            if isinstance(source, Mapping) and "uri" in source:
                sources.append(dict(source))
    rows = [{"uri": a.uri, "kind": a.kind.value, "sha256": a.sha256, "size": a.size,
             "extra": {**a.extra, XCOMS_KEY: dict(xcoms)}} for a in outputs]
    store.record_artifacts(
        key, try_number, rows, sources, cache_key=cache,
        config_hash=config_hash(rendered_arguments(op)),
        git_commit=dag_folder_commit(op.dag.fileloc) if op.dag is not None else None)
