"""``xcom_resume``: base -> part (mapped over [1, 2, 3]) -> total.

``part`` with ``x == 2`` fails until ``conf["marker"]`` exists; ``total`` is
``sum(parts) + base`` (70 once every part succeeded).
"""

from __future__ import annotations

from pathlib import Path

from mlpipe import dag, task


@dag(dag_id="xcom_resume")
def xcom_resume():
    @task
    def base():
        return 10

    @task
    def part(x, base, conf=None):
        marker = Path(conf["marker"])
        if x == 2 and not marker.exists():
            marker.write_text("failed once")
            raise RuntimeError("part 2 fails the first time")
        return x * base

    @task
    def total(parts, base):
        return sum(parts) + base

    b = base()
    total(part.partial(base=b).expand(x=[1, 2, 3]), b)


xcom_resume()
