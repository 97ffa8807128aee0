"""``MetadataStore`` implements the store protocols the scheduler and the runtime use."""

from __future__ import annotations

import inspect

import pytest

from mlpipe.store import protocols
from mlpipe.store.metadata_store import MetadataStore

PROTOCOLS = [protocols.TryStore, protocols.DriverStore, protocols.SchedulerStore]


def _members(proto: type) -> dict[str, object]:
    return {name: value for name, value in vars(proto).items()
            if callable(value) and not name.startswith("_")}


@pytest.mark.parametrize("proto", PROTOCOLS, ids=lambda p: p.__name__)
def test_every_protocol_method_exists_with_the_same_parameters(proto: type) -> None:
    for name, declared in _members(proto).items():
        implemented = getattr(MetadataStore, name, None)
        assert implemented is not None, f"MetadataStore lacks {proto.__name__}.{name}"
        want = [(p.name, p.kind, p.default)
                for p in inspect.signature(declared).parameters.values()]  # type: ignore[arg-type]
        have = [(p.name, p.kind, p.default)
                for p in inspect.signature(implemented).parameters.values()]
        assert have == want, f"{name}: {have} != {want}"


def test_the_protocols_cover_what_the_driver_needs() -> None:
    names = set()
    for proto in PROTOCOLS:
        names |= set(_members(proto))
    assert {"finish_try", "try_transaction", "queue", "claim", "transition",
            "claim_runs"} <= names
    assert len(_members(protocols.TryStore)) == 17
    assert len(_members(protocols.DriverStore)) == 12
    assert len(_members(protocols.SchedulerStore)) == 13
