"""Datasets (data-aware scheduling): ``Dataset(uri)`` (alias ``Asset``) and conditions on them.

A task with ``outlets=[ds]`` marks ``ds`` updated when it succeeds; a DAG with
``schedule=[ds1, ds2]`` (or ``ds1 & ds2``, ``ds1 | ds2``, ``DatasetAny``, ``DatasetAll``)
runs once its condition holds over the datasets updated since its last dataset-triggered
run. ``s3://`` datasets are also updated by the scheduler when objects under the prefix
change. Pure: the URI is checked here, nothing is read or listed.
"""

from __future__ import annotations

import json
import re
from abc import ABC, abstractmethod
from collections.abc import Collection, Iterator, Mapping
from typing import Any

from mlpipe.errors import InvalidDatasetError

__all__ = ["Asset", "Dataset", "DatasetAll", "DatasetAny", "DatasetCondition",
           "dataset_condition"]

#: longest URI accepted (an S3 key may be 1024 bytes, plus the bucket and scheme)
MAX_URI_LENGTH = 1500
#: largest ``extra`` accepted, as JSON
MAX_EXTRA_BYTES = 4096
_SCHEME = re.compile(r"^([a-z][a-z0-9+.-]{0,31})://")
_BAD_CHARACTERS = re.compile(r"[\s\x00-\x1f\x7f]")


class DatasetCondition(ABC):
    """What a dataset schedule waits for: a dataset, or any/all of several."""

    @abstractmethod
    def evaluate(self, updated: Collection[str]) -> bool:
        """Whether the condition holds when the datasets with these URIs were updated."""

    @abstractmethod
    def iter_datasets(self) -> Iterator[Dataset]:
        """Every dataset the condition names (depth first, repeats included)."""

    def __or__(self, other: object) -> DatasetAny:
        return DatasetAny(self, _condition(other, "|"))

    def __and__(self, other: object) -> DatasetAll:
        return DatasetAll(self, _condition(other, "&"))

    @property
    def uris(self) -> list[str]:
        """The URIs of the datasets named, each once, in order."""
        return list(dict.fromkeys(d.uri for d in self.iter_datasets()))


class Dataset(DatasetCondition):
    """A piece of data named by a URI (``s3://bucket/images/``, ``file:///data/x.csv``).

    ``extra`` is free JSON the dataset carries; for ``s3://`` datasets
    ``extra={"aws_conn_id": "..."}`` names the connection the scheduler lists it with
    (default ``aws_default``). Two datasets are the same when their URIs are.
    """

    __slots__ = ("extra", "uri")

    def __init__(self, uri: str, extra: Mapping[str, Any] | None = None) -> None:
        self.uri = check_uri(uri)
        self.extra = _check_extra(self.uri, extra)

    @property
    def scheme(self) -> str:
        return self.uri.split("://", 1)[0]

    @property
    def aws_conn_id(self) -> str:
        """The connection an ``s3://`` dataset is listed with."""
        return str(self.extra.get("aws_conn_id", "aws_default"))

    def evaluate(self, updated: Collection[str]) -> bool:
        return self.uri in updated

    def iter_datasets(self) -> Iterator[Dataset]:
        yield self

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Dataset) and other.uri == self.uri

    def __hash__(self) -> int:
        return hash(("Dataset", self.uri))

    def __repr__(self) -> str:
        return f"Dataset({self.uri!r})" if not self.extra else \
            f"Dataset({self.uri!r}, extra={self.extra!r})"


#: Airflow 3's name for a dataset
Asset = Dataset


class _Group(DatasetCondition):
    _word = ""

    def __init__(self, *objects: DatasetCondition) -> None:
        if not objects:
            raise InvalidDatasetError(None, f"{type(self).__name__}() needs at least one "
                                            "dataset")
        self.objects = tuple(_condition(o, type(self).__name__) for o in objects)

    def iter_datasets(self) -> Iterator[Dataset]:
        for item in self.objects:
            yield from item.iter_datasets()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Group) and type(other) is type(self) and \
            other.objects == self.objects

    def __hash__(self) -> int:
        return hash((type(self).__name__, self.objects))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(map(repr, self.objects))})"

    def describe(self) -> str:
        parts = [o.uri if isinstance(o, Dataset) else f"({o.describe()})"  # type: ignore[attr-defined]
                 for o in self.objects]
        return f" {self._word} ".join(parts)


class DatasetAny(_Group):
    """Holds when any of its datasets (or conditions) was updated: ``a | b``."""

    _word = "or"

    def evaluate(self, updated: Collection[str]) -> bool:
        return any(o.evaluate(updated) for o in self.objects)


class DatasetAll(_Group):
    """Holds when all of its datasets (or conditions) were updated: ``a & b``, or a list."""

    _word = "and"

    def evaluate(self, updated: Collection[str]) -> bool:
        return all(o.evaluate(updated) for o in self.objects)


def dataset_condition(schedule: object) -> DatasetCondition | None:
    """The condition a ``schedule`` of datasets means (a list: all of them); None for any
    other kind of schedule."""
    if isinstance(schedule, DatasetCondition):
        return schedule
    if isinstance(schedule, (list, tuple)):
        if not schedule:
            raise InvalidDatasetError(None, "schedule=[] names no dataset; use schedule=None "
                                            "for a DAG that runs only when triggered")
        return DatasetAll(*schedule)
    return None


def describe(condition: DatasetCondition) -> str:
    """A one-line description: ``s3://a/ and s3://b/``."""
    return condition.uri if isinstance(condition, Dataset) else \
        condition.describe()  # type: ignore[attr-defined]


def check_uri(uri: object) -> str:
    """``uri`` if it is a usable dataset URI (``scheme://rest``), else ``InvalidDatasetError``."""
    if not isinstance(uri, str):
        raise InvalidDatasetError(uri, f"the URI must be a string, got {type(uri).__name__}")
    if len(uri) > MAX_URI_LENGTH:
        raise InvalidDatasetError(uri, f"the URI is {len(uri)} characters long; at most "
                                       f"{MAX_URI_LENGTH} are allowed")
    if _BAD_CHARACTERS.search(uri):
        raise InvalidDatasetError(uri, "the URI contains whitespace or control characters")
    match = _SCHEME.match(uri)
    if match is None:
        raise InvalidDatasetError(uri, "the URI needs a lower-case scheme, like "
                                       "'s3://bucket/prefix/' or 'file:///data/table.csv'")
    if not uri[match.end():]:
        raise InvalidDatasetError(uri, "the URI names nothing after its scheme")
    if match.group(1) == "s3" and uri[match.end():].startswith("/"):
        raise InvalidDatasetError(uri, "an s3:// URI must name a bucket: s3://BUCKET/PREFIX/")
    return uri


def _check_extra(uri: str, extra: Mapping[str, Any] | None) -> dict[str, Any]:
    if extra is None:
        return {}
    if not isinstance(extra, Mapping) or not all(isinstance(k, str) for k in extra):
        raise InvalidDatasetError(uri, "extra must be a dict with string keys")
    try:
        size = len(json.dumps(dict(extra)))
    except (TypeError, ValueError) as exc:
        raise InvalidDatasetError(uri, f"extra must be JSON: {exc}") from None
    if size > MAX_EXTRA_BYTES:
        raise InvalidDatasetError(uri, f"extra is {size} bytes as JSON; at most "
                                       f"{MAX_EXTRA_BYTES} are allowed")
    conn_id = extra.get("aws_conn_id", "aws_default")
    if not isinstance(conn_id, str) or not conn_id:
        raise InvalidDatasetError(uri, f"extra['aws_conn_id'] must be a connection id, got "
                                       f"{conn_id!r}")
    return dict(extra)


def _condition(value: object, where: str) -> DatasetCondition:
    if isinstance(value, DatasetCondition):
        return value
    raise InvalidDatasetError(value, f"{where} takes Dataset objects (or DatasetAny/DatasetAll),"
                                     f" not {type(value).__name__}; wrap a URI in Dataset(...)")
