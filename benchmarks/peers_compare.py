"""mlpipe's per-task overhead side by side with Airflow, Prefect, Dagster and Luigi.

Three workloads, each written idiomatically per engine (``benchmarks/peers/*_workloads.py``,
run with that peer's own venv under ``.peers/``, made by ``benchmarks/peers/setup.sh``):
- chain-N: N no-op tasks passing an int (final value asserted);
- fan-out 1 -> M -> 1, the join sums (sum asserted);
- persisted chain-K: a chain through each engine's persisted path, in one process as every
  peer runs it here (mlpipe: the metadata store with the SequentialExecutor); mlpipe also
  with the LocalExecutor (a forked process per try, as ``persisted_path.py`` runs it).
Per-task overhead = (wall time - the same work as plain calls in that process) / tasks, after
one warm-up run at a tiny size. Each figure's value is mlpipe's overhead; its baseline the
fastest peer's, then each peer's. A peer that is not installed is skipped with a note.
Usage: ``python benchmarks/peers_compare.py [--chain 200] [--fanout 500] [--persisted 40]
[--peers airflow,prefect] [--quick] [--json PATH]``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent / "peers"))

from _common import plain_chain, plain_fanout  # the baselines the peers use too (stdlib only)
from _report import Figure, add_arguments, emit

from mlpipe import DAG

HERE = Path(__file__).resolve().parent

PEERS = ("airflow", "prefect", "dagster", "luigi")
PEER_TIMEOUT_S = 3600
#: the line of a traceback that names the exception
ERROR_LINE = re.compile(r"^[\w.]*(Error|Exception|Exit|Interrupt)\b")


def load(name: str) -> ModuleType:
    """Import ``benchmarks/<name>.py`` by path."""
    spec = importlib.util.spec_from_file_location(f"bench_{name}", HERE / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module






def plain_seconds(work: Callable[[int], int], size: int) -> float:
    """Wall time of ``work(size)``: the baseline subtracted from the engine's time."""
    began = time.perf_counter()
    work(size)
    return time.perf_counter() - began


def timed_dag_test(dag: DAG, leaf: str, expected: int) -> float:
    """Seconds of one ``dag.test()`` whose ``leaf`` must return ``expected``."""
    began = time.perf_counter()
    run = dag.test()
    seconds = time.perf_counter() - began
    assert run.state == "success", run.state
    ti = run.get_task_instance(leaf)
    assert ti is not None and ti.xcom_pull() == expected, leaf
    return seconds


def chain_leaf(n: int) -> str:
    return "step" if n == 2 else f"step__{n - 2}"


LOCAL_VARIANT = "local executor, a process per try"


def mlpipe_overheads(chain: int, fanout: int, persisted: int) -> dict[str, dict[str, float]]:
    """mlpipe's per-task overhead (ms) per workload; key ``mlpipe`` and the sequential variant."""
    overhead = load("engine_overhead")
    path = load("persisted_path")
    timed_dag_test(overhead.build_chain(3), chain_leaf(3), 2)  # warm-up
    seconds = timed_dag_test(overhead.build_chain(chain), chain_leaf(chain), chain - 1)
    out = {f"chain-{chain}": {
        "mlpipe": (seconds - plain_seconds(plain_chain, chain)) / chain * 1000}}
    expected = fanout + fanout * (fanout - 1) // 2
    seconds = timed_dag_test(overhead.build_fanout(fanout), "join", expected)
    out[f"fan-out 1->{fanout}->1"] = {
        "mlpipe": (seconds - plain_seconds(plain_fanout, fanout)) / (fanout + 2) * 1000}
    row: dict[str, float] = {}
    # The peers' persisted paths run in one process (Airflow's dag.test() on its database,
    # Prefect's persisted results, Dagster's instance storage, Luigi's file targets): so
    # does mlpipe's sequential executor, through the metadata store. The local executor
    # adds what none of them pays here, a process per try.
    for executor, key in (("sequential", "mlpipe"), ("local", LOCAL_VARIANT)):
        with path.store_engine(chains=(3, persisted), executor=executor) as engine:
            path.run_chain(engine, 3, "warm-up")
            row[key] = path.run_chain(engine, persisted).per_task_ms
    out[f"persisted chain-{persisted}"] = row
    return out


def peer_overheads(peer: str, peers_dir: Path, sizes: list[str], quick: bool
                   ) -> dict[str, float] | None:
    """Run ``peers/<peer>_workloads.py`` with the peer's python: per-task ms per workload.

    None when the peer is not installed; raises RuntimeError when its run fails.
    """
    python = peers_dir / peer / "bin" / "python"
    if not python.exists() or not (peers_dir / peer / ".installed").exists():
        print(f"peer {peer} not installed: run make bench-peers", flush=True)
        return None
    log = peers_dir / peer / "last-run.log"  # kept for a look after a failure
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "figures.json"
        command = [str(python), str(HERE / "peers" / f"{peer}_workloads.py"), "--json",
                   str(out), *sizes, *(["--quick"] if quick else [])]
        print(f"peer {peer}: running {' '.join(command[1:2])} ...", flush=True)
        with log.open("w") as sink:
            code = subprocess.run(command, stdout=sink, stderr=subprocess.STDOUT,
                                  timeout=PEER_TIMEOUT_S, check=False).returncode
        if code != 0 or not out.exists():
            lines = log.read_text(errors="replace").strip().splitlines()
            print("\n".join(lines[-15:]), file=sys.stderr)
            errors = [line for line in lines if ERROR_LINE.match(line)]
            last = (errors or lines or ["no output"])[-1]
            raise RuntimeError(f"peer {peer} failed (exit {code}, log {log}): {last}")
        result = json.loads(out.read_text())
    return {row["workload"]: row["per_task_ms"] for row in result["workloads"]}


def figures_for(workload: str, mlpipe: dict[str, float], peers: dict[str, float]
                ) -> list[Figure]:
    """mlpipe's figures for one workload against the fastest peer, then each peer."""
    name = f"{workload} per-task overhead"
    fastest = min(peers, key=peers.__getitem__) if peers else None
    figures = []
    for variant, ms in mlpipe.items():
        figures.append(Figure(name, f"{variant} vs fastest peer", "ms", ms,
                              peers[fastest] if fastest else None, fastest or ""))
        figures += [Figure(name, f"{variant} vs {peer}", "ms", ms, peer_ms, peer)
                    for peer, peer_ms in peers.items()]
    return figures


def main(argv: list[str] | None = None) -> list[Figure]:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--chain", type=int, default=200)
    parser.add_argument("--fanout", type=int, default=500)
    parser.add_argument("--persisted", type=int, default=40)
    parser.add_argument("--peers", default=",".join(PEERS),
                        help=f"comma-separated subset of {','.join(PEERS)}")
    parser.add_argument("--peers-dir", type=Path, default=HERE.parent / ".peers",
                        help="where setup.sh put the peers' venvs")
    add_arguments(parser)
    args = parser.parse_args(argv)
    if args.quick:
        args.chain, args.fanout, args.persisted = 4, 3, 3
    chosen = [p.strip() for p in args.peers.split(",") if p.strip()]
    unknown = sorted(set(chosen) - set(PEERS))
    if unknown:
        parser.error(f"unknown peers {unknown}; known: {sorted(PEERS)}")
    logging.getLogger().setLevel(logging.WARNING)

    mlpipe = mlpipe_overheads(args.chain, args.fanout, args.persisted)
    sizes = ["--chain", str(args.chain), "--fanout", str(args.fanout),
             "--persisted", str(args.persisted)]
    per_peer: dict[str, dict[str, float]] = {}
    failures: list[str] = []
    for peer in chosen:
        try:
            result = peer_overheads(peer, args.peers_dir, sizes, args.quick)
        except (RuntimeError, subprocess.TimeoutExpired) as exc:
            failures.append(str(exc))
            continue
        if result is not None:
            per_peer[peer] = result
    figures: list[Figure] = []
    for workload, ours in mlpipe.items():
        peers = {p: rows[workload] for p, rows in per_peer.items() if workload in rows}
        figures += figures_for(workload, ours, peers)
    emit("peers_compare", figures, args.json)
    if failures:
        print("\n".join(failures), file=sys.stderr)
        raise SystemExit(1)
    return figures


if __name__ == "__main__":
    main()
