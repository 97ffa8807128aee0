"""Prometheus metrics: ``GET /metrics`` on the web server, ``--metrics-port`` of the scheduler.

Counts come from the metadata database when scraped (``StoreCollector``), so every
scheduler and web server of one database reports the same numbers: runs and task instances
by state, the queue depth (queued task instances) and finished tries' durations. The
scheduler adds its own loop time (``SchedulerMetrics``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from mlpipe.store.metadata_store import MetadataStore

#: task duration buckets, seconds (a training task runs for hours)
DURATION_BUCKETS = (1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0, 4 * 3600.0, 24 * 3600.0)


class StoreCollector:
    """A prometheus-client collector reading the counts from the store at each scrape."""

    def __init__(self, store: MetadataStore) -> None:
        self.store = store

    def describe(self) -> list[Any]:
        return []  # computed at collect time; no fixed description needed

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily

        runs = GaugeMetricFamily("mlpipe_dag_runs", "DAG runs by state", labels=["state"])
        for state, count in sorted(self.store.run_state_counts().items()):
            runs.add_metric([state], count)
        yield runs
        counts = self.store.ti_state_counts()
        tis = GaugeMetricFamily("mlpipe_task_instances", "Task instances by state",
                                labels=["state"])
        for state, count in sorted(counts.items()):
            tis.add_metric([state], count)
        yield tis
        yield GaugeMetricFamily("mlpipe_queue_depth", "Task instances queued, waiting for a "
                                "slot", value=counts.get("queued", 0))
        cumulative, total, seconds = self.store.duration_buckets(DURATION_BUCKETS)
        buckets = [(repr(b), c) for b, c in zip(DURATION_BUCKETS, cumulative, strict=True)]
        histogram = HistogramMetricFamily("mlpipe_task_duration_seconds",
                                          "Durations of finished task tries")
        histogram.add_metric([], [*buckets, ("+Inf", total)], seconds)
        yield histogram


def store_registry(store: MetadataStore) -> Any:
    """A fresh registry with the store's counts (not the process-global one)."""
    from prometheus_client import CollectorRegistry

    registry = CollectorRegistry(auto_describe=False)
    registry.register(StoreCollector(store))
    return registry


class SchedulerMetrics:
    """What ``mlpipe scheduler --metrics-port`` serves: the store's counts and loop times."""

    def __init__(self, store: MetadataStore) -> None:
        from prometheus_client import Histogram

        self.registry = store_registry(store)
        self.loop_seconds = Histogram("mlpipe_scheduler_loop_seconds",
                                      "Time of one scheduler loop", registry=self.registry,
                                      buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))

    def observe_loop(self, seconds: float) -> None:
        self.loop_seconds.observe(seconds)

    def serve(self, port: int, host: str = "127.0.0.1") -> int:
        """Serve ``/metrics`` on a thread; the port bound (``port`` 0 picks one)."""
        from prometheus_client import start_http_server

        server, _thread = start_http_server(port, addr=host, registry=self.registry)
        return int(server.server_port)
