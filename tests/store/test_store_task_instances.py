"""The store's contract for task instances: listing, expanding, compare-and-set state changes,
heartbeats and clearing, on every backend."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone

import pytest

from mlpipe.store.entities import DagRunRecord, TIKey
from mlpipe.store.metadata_store import MetadataStore

Move = Callable[..., None]
FINISHED = ("success", "failed", "skipped", "upstream_failed", "removed")
T0 = datetime(2024, 6, 1, 12, 0, 0, 250000, tzinfo=UTC)


def key(task_id: str, map_index: int = -1, run_id: str = "manual__1") -> TIKey:
    return TIKey("etl", run_id, task_id, map_index)


def state_of(store: MetadataStore, ti: TIKey) -> str:
    record = store.get_ti(ti)
    assert record is not None, f"no task instance {ti}"
    return record.state


def moves(store: MetadataStore, run_id: str = "manual__1") -> list[tuple[str, int, str, str, int]]:
    """``(task_id, map_index, from_state, to_state, try_number)`` of every recorded transition."""
    return [(t.task_id, t.map_index, t.from_state, t.to_state, t.try_number)
            for t in store.transitions("etl", run_id)]


# -- reading ----------------------------------------------------------------------------------


def test_get_ti_of_an_unknown_key_is_none(store: MetadataStore, run: DagRunRecord) -> None:
    assert store.get_ti(key("nope")) is None
    assert store.get_ti(key("extract", 0)) is None
    assert store.get_ti(key("extract", run_id="other")) is None


def test_list_tis_orders_by_task_id_then_map_index(store: MetadataStore,
                                                   make_run: Callable[..., DagRunRecord]) -> None:
    make_run(tasks=[("b", 10), ("b", 2), ("a", -1), ("c", 0), ("b", -1)])

    tis = store.list_tis("etl", "manual__1")

    assert [(ti.task_id, ti.map_index) for ti in tis] == [
        ("a", -1), ("b", -1), ("b", 2), ("b", 10), ("c", 0)]
    assert all(ti.key == TIKey("etl", "manual__1", ti.task_id, ti.map_index) for ti in tis)


def test_list_tis_filters_by_task_ids_and_states(store: MetadataStore, run: DagRunRecord,
                                                 make_run: Callable[..., DagRunRecord],
                                                 move: Move) -> None:
    make_run("etl", "other")
    move(key("extract"), "success")
    move(key("transform"), "queued")

    def listed(**filters: object) -> list[str]:
        return [ti.task_id for ti in store.list_tis("etl", "manual__1", **filters)]

    assert listed(task_ids=["load", "extract"]) == ["extract", "load"]
    assert listed(states=["success", "queued"]) == ["extract", "transform"]
    assert listed(task_ids=["extract", "load"], states=["none"]) == ["load"]
    assert listed(task_ids=[]) == []
    assert listed(states=[]) == []
    assert len(store.list_tis("etl", "other", states=["none"])) == 4


def test_add_tis_expands_a_mapped_task_dropping_its_placeholder(store: MetadataStore,
                                                                run: DagRunRecord) -> None:
    store.add_tis("etl", "manual__1", [("fan", i, "MappedOperator", 3) for i in range(3)],
                  drop=[("fan", -1)])

    fan = store.list_tis("etl", "manual__1", task_ids=["fan"])
    assert [(ti.map_index, ti.state, ti.operator, ti.max_tries, ti.try_number)
            for ti in fan] == [(i, "none", "MappedOperator", 3, 0) for i in range(3)]
    assert len(store.list_tis("etl", "manual__1")) == 3 + 3


def test_add_tis_with_nothing_to_add_only_drops(store: MetadataStore, run: DagRunRecord) -> None:
    store.add_tis("etl", "manual__1", [], drop=[("fan", -1)])

    assert store.get_ti(key("fan")) is None
    assert store.list_tis("etl", "manual__1", task_ids=["fan"]) == []


# -- transition (compare-and-set) ------------------------------------------------------------


def test_transition_from_the_expected_state_records_a_transition(store: MetadataStore,
                                                                 run: DagRunRecord) -> None:
    queued_at = T0
    assert store.transition(key("extract"), ["none"], "scheduled")
    assert store.transition(key("extract"), ["scheduled"], "queued", queued_at=queued_at)

    ti = store.get_ti(key("extract"))
    assert ti is not None
    assert (ti.state, ti.queued_at) == ("queued", queued_at)
    assert moves(store) == [("extract", -1, "none", "scheduled", 0),
                            ("extract", -1, "scheduled", "queued", 0)]
    first = store.transitions("etl", "manual__1")[0]
    assert first.dag_id == "etl" and first.run_id == "manual__1"
    assert first.at.utcoffset() == timedelta(0)
    assert abs(first.at - datetime.now(UTC)) < timedelta(minutes=1)


def test_transition_from_another_state_changes_nothing(store: MetadataStore,
                                                       run: DagRunRecord) -> None:
    assert not store.transition(key("extract"), ["queued"], "running", pid=1)

    ti = store.get_ti(key("extract"))
    assert ti is not None and (ti.state, ti.pid) == ("none", None)
    assert moves(store) == []


def test_transition_from_any_of_several_states(store: MetadataStore, run: DagRunRecord,
                                               move: Move) -> None:
    move(key("extract"), "up_for_retry")

    assert not store.transition(key("extract"), ["none", "scheduled"], "queued")
    assert store.transition(key("extract"), ["scheduled", "up_for_retry"], "queued")

    assert state_of(store, key("extract")) == "queued"
    assert moves(store)[-1] == ("extract", -1, "up_for_retry", "queued", 0)


@pytest.mark.parametrize("from_states", [["none"], ["none", "scheduled"]],
                         ids=["one-state", "several-states"])
def test_transition_of_an_unknown_instance_is_false(store: MetadataStore, run: DagRunRecord,
                                                    from_states: list[str]) -> None:
    assert not store.transition(key("nope"), from_states, "queued")
    assert moves(store) == []


def test_a_transition_records_the_try_number_it_sets(store: MetadataStore, run: DagRunRecord,
                                                     move: Move) -> None:
    move(key("extract"), "queued")

    assert store.claim(key("extract"), pid=7)
    assert store.transition(key("extract"), ["running"], "up_for_retry")

    assert moves(store)[-2:] == [("extract", -1, "queued", "running", 1),
                                 ("extract", -1, "running", "up_for_retry", 1)]


# -- claim -------------------------------------------------------------------------------------


def test_claim_moves_queued_to_running_once(store: MetadataStore, run: DagRunRecord,
                                            move: Move) -> None:
    move(key("extract"), "queued")

    assert store.claim(key("extract"), pid=42, hostname="worker-1",
                       start_date=T0, log_path="/logs/extract")
    assert not store.claim(key("extract"), pid=43)

    ti = store.get_ti(key("extract"))
    assert ti is not None
    assert (ti.state, ti.try_number, ti.pid, ti.hostname, ti.log_path) == (
        "running", 1, 42, "worker-1", "/logs/extract")
    assert (ti.start_date, ti.heartbeat_at) == (T0, T0)


def test_claim_refuses_instances_that_are_not_queued(store: MetadataStore,
                                                    run: DagRunRecord, move: Move) -> None:
    move(key("transform"), "success")

    assert not store.claim(key("extract"))
    assert not store.claim(key("transform"))
    assert not store.claim(key("nope"))
    assert (state_of(store, key("extract")), state_of(store, key("transform"))) == (
        "none", "success")


def test_claim_resets_what_the_previous_try_left(store: MetadataStore, run: DagRunRecord,
                                                 move: Move) -> None:
    move(key("extract"), "queued")
    store.claim(key("extract"), pid=1)
    store.finish_try(key("extract"), to_state="up_for_retry", xcoms={"partial": "1"},
                     end_date=T0, duration=1.5, error="Boom", next_retry_at=T0)
    move(key("extract"), "queued")

    assert store.claim(key("extract"), pid=2)

    ti = store.get_ti(key("extract"))
    assert ti is not None
    assert (ti.try_number, ti.end_date, ti.duration, ti.error, ti.next_retry_at) == (
        2, None, None, None, None)
    assert store.get_xcoms("etl", "manual__1", "extract", "partial") == {}


# -- set_tis_state --------------------------------------------------------------------------


def test_set_tis_state_keeps_finished_instances(store: MetadataStore, run: DagRunRecord,
                                                move: Move) -> None:
    move(key("extract"), "success")
    move(key("transform"), "failed")
    move(key("fan"), "skipped")

    changed = store.set_tis_state([key("extract"), key("transform"), key("load"), key("fan")],
                                  "skipped", unless=FINISHED)

    assert changed == 1
    assert [(ti.task_id, ti.state) for ti in store.list_tis("etl", "manual__1")] == [
        ("extract", "success"), ("fan", "skipped"), ("load", "skipped"),
        ("transform", "failed")]
    assert moves(store)[-1] == ("load", -1, "none", "skipped", 0)


def test_set_tis_state_without_unless_moves_from_any_other_state(store: MetadataStore,
                                                                 run: DagRunRecord,
                                                                 move: Move) -> None:
    move(key("extract"), "success")
    move(key("transform"), "running")

    changed = store.set_tis_state([key("extract"), key("transform"), key("nope")],
                                  "upstream_failed")

    assert changed == 2
    assert state_of(store, key("extract")) == state_of(store, key("transform")) == \
        "upstream_failed"


def test_set_tis_state_of_no_keys_is_zero(store: MetadataStore, run: DagRunRecord) -> None:
    assert store.set_tis_state([], "skipped") == 0


# -- heartbeats --------------------------------------------------------------------------------


@pytest.fixture
def running(store: MetadataStore, run: DagRunRecord, move: Move) -> TIKey:
    """``extract``, claimed by pid 4242 with a heartbeat at T0."""
    move(key("extract"), "queued")
    assert store.claim(key("extract"), pid=4242, start_date=T0)
    return key("extract")


def test_heartbeat_of_the_running_process_updates_the_time(store: MetadataStore,
                                                           running: TIKey) -> None:
    before = datetime.now(UTC)

    assert store.heartbeat(running, 4242)

    ti = store.get_ti(running)
    assert ti is not None and ti.heartbeat_at is not None
    assert ti.heartbeat_at.utcoffset() == timedelta(0)
    assert before - timedelta(seconds=1) <= ti.heartbeat_at <= datetime.now(UTC)


def test_heartbeat_of_another_pid_is_refused(store: MetadataStore, running: TIKey) -> None:
    assert not store.heartbeat(running, 9999)

    ti = store.get_ti(running)
    assert ti is not None and ti.heartbeat_at == T0


def test_heartbeat_of_an_instance_no_longer_running_is_refused(store: MetadataStore,
                                                               running: TIKey,
                                                               move: Move) -> None:
    move(running, "failed")

    assert not store.heartbeat(running, 4242)
    assert not store.heartbeat(key("load"), 4242)


def test_stale_running_finds_only_old_heartbeats(store: MetadataStore, run: DagRunRecord,
                                                 move: Move) -> None:
    for task_id, beat in [("extract", T0), ("transform", T0 + timedelta(seconds=50))]:
        move(key(task_id), "queued")
        assert store.claim(key(task_id), pid=1, start_date=beat)
    move(key("load"), "success", heartbeat_at=T0 - timedelta(hours=1))
    now = T0 + timedelta(seconds=60)

    stale = store.stale_running(timedelta(seconds=30), now=now)

    assert [ti.task_id for ti in stale] == ["extract"]
    assert stale[0].state == "running"
    assert {ti.task_id for ti in store.stale_running(timedelta(seconds=5), now=now)} == {
        "extract", "transform"}
    assert store.stale_running(timedelta(seconds=61), now=now) == []


def test_stale_running_compares_instants_not_wall_clocks(store: MetadataStore,
                                                         running: TIKey) -> None:
    # The same instant as T0 + 20 s, written in UTC+05:00.
    now = (T0 + timedelta(seconds=20)).astimezone(timezone(timedelta(hours=5)))

    assert [ti.key for ti in store.stale_running(timedelta(seconds=10), now=now)] == [running]
    assert store.stale_running(timedelta(seconds=30), now=now) == []


# -- clear_tis -----------------------------------------------------------------------------------


def test_clear_tis_resets_finished_instances(store: MetadataStore, run: DagRunRecord,
                                             move: Move) -> None:
    move(key("extract"), "queued")
    store.claim(key("extract"), pid=5)
    store.finish_try(key("extract"), to_state="failed", xcoms={"return_value": "1"},
                     end_date=T0, error="Boom")
    move(key("load"), "up_for_retry", next_retry_at=T0)

    cleared = store.clear_tis([(key("extract"), 3), (key("load"), 2)])

    assert cleared == [key("extract"), key("load")]
    extract, load = store.get_ti(key("extract")), store.get_ti(key("load"))
    assert extract is not None and load is not None
    assert (extract.state, extract.max_tries, extract.end_date, extract.pid) == (
        "none", 3, None, None)
    assert extract.try_number == 1  # kept: the next try is number 2
    assert (load.state, load.max_tries, load.next_retry_at) == ("none", 2, None)
    assert store.get_xcoms("etl", "manual__1", "extract", "return_value") == {}
    assert moves(store)[-2:] == [("extract", -1, "failed", "none", 1),
                                 ("load", -1, "up_for_retry", "none", 0)]


def test_clear_tis_leaves_running_instances_and_their_xcoms(store: MetadataStore,
                                                            running: TIKey) -> None:
    store.push_xcoms(running, {"progress": "50"})

    assert store.clear_tis([(running, 5)]) == []

    ti = store.get_ti(running)
    assert ti is not None and (ti.state, ti.max_tries, ti.pid) == ("running", 1, 4242)
    assert store.get_xcoms("etl", "manual__1", "extract", "progress") == {-1: "50"}


@pytest.fixture
def expanded(store: MetadataStore, run: DagRunRecord, move: Move) -> list[TIKey]:
    """``fan`` expanded to three successful instances, each with a return value."""
    store.add_tis("etl", "manual__1", [("fan", i, "MappedOperator", 1) for i in range(3)],
                  drop=[("fan", -1)])
    keys = [key("fan", i) for i in range(3)]
    for ti in keys:
        move(ti, "success")
        store.push_xcoms(ti, {"return_value": str(ti.map_index)})
    return keys


def test_clear_tis_replaces_a_mapped_task_by_one_unexpanded_instance(
        store: MetadataStore, expanded: list[TIKey]) -> None:
    cleared = store.clear_tis([(ti, 4) for ti in expanded], mapped={"fan"})

    assert cleared == expanded
    fan = store.list_tis("etl", "manual__1", task_ids=["fan"])
    assert [(ti.map_index, ti.state, ti.try_number, ti.max_tries) for ti in fan] == [
        (-1, "none", 0, 4)]
    assert store.get_xcoms("etl", "manual__1", "fan", "return_value") == {}
    assert state_of(store, key("extract")) == "none"  # other tasks untouched


def test_clear_tis_keeps_the_operator_of_a_replaced_mapped_task(
        store: MetadataStore, expanded: list[TIKey]) -> None:
    store.clear_tis([(ti, 1) for ti in expanded], mapped={"fan"})

    fan = store.get_ti(key("fan"))
    assert fan is not None and fan.operator == "MappedOperator"


def test_clearing_one_mapped_instance_drops_the_xcoms_of_all_it_replaces(
        store: MetadataStore, expanded: list[TIKey]) -> None:
    store.clear_tis([(expanded[0], 1)], mapped={"fan"})

    assert [ti.map_index for ti in store.list_tis("etl", "manual__1", task_ids=["fan"])] == [-1]
    assert store.get_xcoms("etl", "manual__1", "fan", "return_value") == {}
