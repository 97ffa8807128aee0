"""What every peer's workloads script shares; standard library only (runs in a peer's venv).

A peer script defines three builders, each taking a size and a scratch folder and returning a
zero-argument callable that runs the workload once on that peer and returns its final value:
``chain(n)`` (n no-op tasks passing an int), ``fanout(m)`` (1 -> m -> 1, the join sums) and
``persisted_chain(n)`` (a chain through the peer's persisted path). :func:`main` warms each
up at a tiny size, times one run at full size, checks the value, times the same work as plain
function calls in this process and reports, per workload, the total seconds and the per-task
overhead in ms: (seconds - plain seconds) / tasks.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

Runner = Callable[[], int]
Builder = Callable[[int, Path], Runner]

#: The peers' scratch state lives here (gitignored), next to their venvs.
PEERS_DIR = Path(__file__).resolve().parents[2] / ".peers"


def plain_chain(n: int) -> int:
    """The chain's work as plain function calls."""
    def step(x: int) -> int:
        return x + 1

    value = 0
    for _ in range(n - 1):
        value = step(value)
    return value


def plain_fanout(m: int) -> int:
    """The fan-out's work as plain function calls."""
    def branch(x: int, i: int) -> int:
        return x + i

    return sum(branch(1, i) for i in range(m))


def expected_fanout(m: int) -> int:
    return m + m * (m - 1) // 2


def _measure(name: str, tasks: int, run: Runner, expected: int, plain: Runner
             ) -> dict[str, float | int | str]:
    began = time.perf_counter()
    value = run()
    seconds = time.perf_counter() - began
    if value != expected:
        raise AssertionError(f"{name}: final value {value}, expected {expected}")
    began = time.perf_counter()
    assert plain() == expected
    plain_seconds = time.perf_counter() - began
    return {"workload": name, "tasks": tasks, "seconds": seconds,
            "plain_seconds": plain_seconds,
            "per_task_ms": (seconds - plain_seconds) / tasks * 1000}


def main(peer: str, distribution: str, *, chain: Builder, fanout: Builder,
         persisted_chain: Builder, argv: list[str] | None = None) -> None:
    """Parse the sizes, run the three workloads and write the figures as JSON."""
    parser = argparse.ArgumentParser(description=f"mlpipe's benchmark workloads on {peer}")
    parser.add_argument("--chain", type=int, default=200)
    parser.add_argument("--fanout", type=int, default=500)
    parser.add_argument("--persisted", type=int, default=40)
    parser.add_argument("--quick", action="store_true", help="tiny sizes (smoke run)")
    parser.add_argument("--json", type=Path, default=None, help="write figures here")
    args = parser.parse_args(argv)
    if args.quick:
        args.chain, args.fanout, args.persisted = 4, 3, 3
    rows = []
    with tempfile.TemporaryDirectory(prefix=f"{peer}-", dir=PEERS_DIR / peer) as name:
        work = Path(name)
        plans = [
            (f"chain-{args.chain}", args.chain, chain, args.chain - 1,
             lambda: plain_chain(args.chain)),
            (f"fan-out 1->{args.fanout}->1", args.fanout + 2, fanout,
             expected_fanout(args.fanout), lambda: plain_fanout(args.fanout)),
            (f"persisted chain-{args.persisted}", args.persisted, persisted_chain,
             args.persisted - 1, lambda: plain_chain(args.persisted)),
        ]
        for index, (workload, tasks, build, expected, plain) in enumerate(plans):
            size = tasks - 2 if build is fanout else tasks
            warm = 2 if build is fanout else 3
            warm_dir, run_dir = work / f"warm{index}", work / f"run{index}"
            warm_dir.mkdir()
            run_dir.mkdir()
            build(warm, warm_dir)()  # imports, first connections, servers
            run = build(size, run_dir)
            rows.append(_measure(workload, tasks, run, expected, plain))
    result = {"peer": peer, "version": metadata.version(distribution),
              "python": platform.python_version(), "workloads": rows}
    text = json.dumps(result, indent=1)
    if args.json is not None:
        args.json.write_text(text)
    else:
        print(text)
    for row in rows:
        print(f"{peer} {row['workload']:<26} {row['seconds']:9.3f} s  "
              f"{row['per_task_ms']:8.3f} ms/task", file=sys.stderr)
