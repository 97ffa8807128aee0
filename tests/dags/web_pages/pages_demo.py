"""``pages_demo``: the DAG the web page and browser tests show: params, a group, a mapped
task, ANSI logs, a secret read from a connection, and a task that waits for a file before it
ends (to watch a running try's log tail)."""

import os
import sys
import time
from pathlib import Path

from mlpipe import DAG, Param, TaskGroup, task
from mlpipe.connections import get_connection

with DAG("pages_demo", tags=["web", "demo"], description="The web UI's test pipeline",
         params={"epochs": Param(2, type="integer", minimum=1, maximum=50,
                                 description="How many epochs to train"),
                 "model": Param("cnn", enum=["cnn", "resnet18"], description="Model family"),
                 "note": Param("hello", type="string")}) as dag:

    @task
    def start(params=None) -> int:
        secret = get_connection("web_secret").password
        print("connecting with password", secret)
        sys.stdout.write(f"\x1b[1;32mcoloured OK\x1b[0m epochs={params['epochs']}\n")
        return int(params["epochs"])

    @task
    def clean(n: int) -> list[int]:
        return list(range(n))

    @task
    def report(values: list[int]) -> int:
        return len(values)

    @task
    def shard(x: int) -> int:
        return x * 2

    @task
    def wait_for_gate() -> None:
        gate = os.environ.get("PAGES_DEMO_GATE")
        if not gate:
            return
        for i in range(600):
            print(f"waiting for the gate, line {i}", flush=True)
            if Path(gate).exists():
                print("gate open")
                return
            time.sleep(0.2)
        raise RuntimeError("the gate never opened")

    first = start()
    with TaskGroup("prep"):
        values = clean(first)
        counted = report(values)
    counted >> wait_for_gate()
    shard.expand(x=values)
