"""Run every benchmark several times and write ``benchmarks/RESULTS.md``.

Each ``benchmarks/*.py`` (except ``_*.py`` and this file) runs as
``python benchmarks/X.py --json FILE [--quick]``, ``--repeat`` times (3 by default), in a
subprocess; their :class:`~_report.Figure` rows are collected into one table per benchmark
(median, min and max over the runs, the baseline's median and the median of the per-run
ratios), after a section on the machine and the versions measured, and before a table of
per-task overheads side by side with the peers (from ``peers_compare.py``). A benchmark that
fails is reported as failed with its last stderr line; the others still run, and the exit
status is 1 at the end. Usage: ``python benchmarks/run_all.py [--repeat 3] [--quick]
[--only NAME] [--output PATH] [--benchmarks-dir DIR]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
PEERS_BENCHMARK = "peers_compare"
PEERS = ("airflow", "prefect", "dagster", "luigi", "awscli")
VERSIONED = ("mlpipe", "torch", "mlflow", "sqlalchemy")
RUN_TIMEOUT_S = 4 * 3600


@dataclass
class Outcome:
    """Every run of one benchmark: the figures of each successful run, or why it failed."""

    name: str
    runs: list[list[dict[str, Any]]] = field(default_factory=list)
    error: str | None = None
    seconds: float = 0.0


#: the slow ML benchmarks repeat themselves by default; here each run is one pass, and the
#: median/min/max come from run_all's own repetitions
ONE_PASS = {name: ["--repeat", "1"] for name in (
    "ml_s3_ingest", "ml_preprocess", "ml_pipeline_rerun")}
# a few % of overhead drowns in one pass's noise: keep an inner median of 3
ONE_PASS["ml_training_overhead"] = ["--repeat", "3"]


def discover(folder: Path) -> list[Path]:
    """The benchmark scripts in ``folder``: ``*.py`` but ``_*.py`` and run_all itself."""
    return sorted(p for p in folder.glob("*.py")
                  if not p.name.startswith("_") and p.name != Path(__file__).name)


def last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "no output"


def run_benchmark(script: Path, *, repeat: int, quick: bool) -> Outcome:
    """Run ``script`` ``repeat`` times; stop at the first failed run."""
    outcome = Outcome(script.stem)
    began = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "figures.json"
        for index in range(repeat):
            out.unlink(missing_ok=True)
            command = [sys.executable, str(script), "--json", str(out)]
            command += ["--quick"] if quick else ONE_PASS.get(script.stem, [])
            try:
                done = subprocess.run(command, capture_output=True, text=True, check=False,
                                      cwd=script.parent.parent, timeout=RUN_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                outcome.error = f"run {index + 1}: timed out after {RUN_TIMEOUT_S} s"
                break
            if done.returncode != 0 or not out.exists():
                outcome.error = (f"run {index + 1} of {repeat} exited {done.returncode}: "
                                 f"{last_line(done.stderr or done.stdout)}")
                break
            outcome.runs.append(json.loads(out.read_text())["figures"])
            print(f"  {script.stem} run {index + 1}/{repeat} ok", flush=True)
    outcome.seconds = time.perf_counter() - began
    return outcome


# -- the report ------------------------------------------------------------------------------

def version_of(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "not installed"


def peer_version(peers_dir: Path, peer: str) -> str:
    """The pinned spec from the peer venv's stamp, with its install time and size."""
    stamp = peers_dir / peer / ".installed"
    if not stamp.exists():
        return "not installed (make bench-peers)"
    lines = stamp.read_text().split()
    notes = dict(line.split("=", 1) for line in lines[1:] if "=" in line)
    extra = ""
    if notes:
        extra = f" (venv {notes.get('size_mb', '?')} MB, installed in "
        extra += f"{notes.get('install_seconds', '?')} s)"
    return f"`{lines[0]}`{extra}"


def read_field(path: str, key: str, sep: str) -> str:
    """The value of the first ``key<sep>value`` line of a text file, or ``""``."""
    try:
        for line in Path(path).read_text().splitlines():
            name, found, value = line.partition(sep)
            if found and name.strip() == key:
                return value.strip().strip('"')
    except OSError:
        pass
    return ""


def git_commit(folder: Path) -> str:
    """The checkout's commit (read-only git calls), marked when the tree has changes."""
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=folder,
                                capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "--no-optional-locks", "status", "--porcelain",
                                "--untracked-files=no"], cwd=folder, capture_output=True,
                               text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{commit}{' + local changes' if dirty.strip() else ''}"


def machine_section(peers_dir: Path, *, names: list[str], repeat: int, quick: bool
                    ) -> list[str]:
    """Markdown lines describing the machine, the software and how this file was made."""
    memory_kb = read_field("/proc/meminfo", "MemTotal", ":").split()
    memory = f"{int(memory_kb[0]) / 1024 / 1024:.1f} GiB" if memory_kb else "unknown"
    os_name = read_field("/etc/os-release", "PRETTY_NAME", "=")
    cpu = read_field("/proc/cpuinfo", "model name", ":") or platform.processor() or "unknown"
    rows = [
        ("date", datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")),
        ("commit", git_commit(HERE)),
        ("benchmarks", ", ".join(names)),
        ("runs", f"{repeat} per benchmark{' (--quick sizes)' if quick else ''}"),
        ("cores", str(os.cpu_count())),
        ("memory", memory),
        ("CPU", cpu),
        ("OS", f"{os_name or platform.system()} ({platform.release()})"),
        ("Python", f"{platform.python_version()} ({platform.python_implementation()})"),
    ]
    rows += [(name, version_of(name)) for name in VERSIONED]
    rows += [(f"peer {peer}", peer_version(peers_dir, peer)) for peer in PEERS]
    lines = ["## Machine", "", "| | |", "| --- | --- |"]
    lines += [f"| {key} | {value} |" for key, value in rows]
    return [*lines, ""]


def fmt(value: Any) -> str:
    """A number for a table cell: 3 significant digits, thousands separated."""
    if value is None:
        return ""
    number = float(value)
    return f"{number:.3g}" if abs(number) < 1000 else f"{number:,.0f}"


def aggregate(runs: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """One row per (workload, metric), in first-seen order, summarised over the runs."""
    keyed: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for figures in runs:
        for f in figures:
            keyed.setdefault((str(f["workload"]), str(f["metric"])), []).append(f)
    rows = []
    for (workload, metric), figures in keyed.items():
        values = [float(f["value"]) for f in figures]
        baselines = [float(f["baseline"]) for f in figures if f.get("baseline") is not None]
        ratios = [float(f["ratio"]) for f in figures if f.get("ratio") is not None]
        rows.append({
            "workload": workload, "metric": metric, "unit": figures[0]["unit"],
            "median": statistics.median(values), "min": min(values), "max": max(values),
            "baseline_label": figures[0].get("baseline_label") or "",
            "baseline": statistics.median(baselines) if baselines else None,
            "ratio": statistics.median(ratios) if ratios else None,
            "target": figures[0].get("target") or "", "runs": len(figures),
        })
    return rows


TABLE_HEADER = ["| workload | metric | unit | median | min | max | baseline | baseline median "
                "| ratio | target |", "| --- | --- | --- | ---: | ---: | ---: | --- | ---: | ---: "
                "| --- |"]


def benchmark_section(outcome: Outcome) -> list[str]:
    lines = [f"## {outcome.name}", ""]
    if outcome.error is not None:
        lines += [f"**FAILED**: {outcome.error}", ""]
    if not outcome.runs:
        return lines
    lines += [f"{len(outcome.runs)} run(s), {outcome.seconds:.0f} s in all.", "",
              *TABLE_HEADER]
    for row in aggregate(outcome.runs):
        ratio = f"{row['ratio']:.2f}x" if row["ratio"] is not None else ""
        lines.append(
            f"| {row['workload']} | {row['metric']} | {row['unit']} | {fmt(row['median'])} "
            f"| {fmt(row['min'])} | {fmt(row['max'])} | {row['baseline_label']} "
            f"| {fmt(row['baseline'])} | {ratio} | {row['target']} |")
    return [*lines, ""]


def peers_section(outcome: Outcome | None) -> list[str]:
    """Per workload: mlpipe's and each peer's per-task overhead, and mlpipe's ratios."""
    lines = ["## Peers", "", "Per-task overhead in ms (median over the runs); a ratio is the "
             "peer's overhead over mlpipe's (above 1: mlpipe costs less).", ""]
    if outcome is None:
        return [*lines, f"`{PEERS_BENCHMARK}` was not run.", ""]
    if not outcome.runs:
        return [*lines, f"`{PEERS_BENCHMARK}` failed: {outcome.error}", ""]
    table: dict[str, dict[str, Any]] = {}
    peers: list[str] = []
    for row in aggregate(outcome.runs):
        workload = str(row["workload"]).removesuffix(" per-task overhead")
        variant, _, against = str(row["metric"]).partition(" vs ")
        name = workload if variant == "mlpipe" else f"{workload}, {variant}"
        entry = table.setdefault(name, {"mlpipe": row["median"]})
        if against == "fastest peer":
            entry["fastest"] = (row["baseline_label"], row["ratio"])
        else:
            entry[against] = row["baseline"]
            entry[f"ratio {against}"] = row["ratio"]
            if against not in peers:
                peers.append(against)
    if not peers:
        lines += ["No peer installed: run `make bench-peers` (mlpipe's figures are in the "
                  f"`{PEERS_BENCHMARK}` table above).", ""]
    header = ["workload", "mlpipe", *peers, "fastest peer", "mlpipe vs fastest",
              *[f"vs {p}" for p in peers]]
    align = ["---", *["---:"] * (1 + len(peers)), "---", *["---:"] * (1 + len(peers))]
    lines += ["| " + " | ".join(header) + " |", "| " + " | ".join(align) + " |"]
    for name, entry in table.items():
        label, ratio = entry.get("fastest", ("", None))
        cells = [name, fmt(entry["mlpipe"]), *[fmt(entry.get(p)) for p in peers], str(label),
                 f"{ratio:.2f}x" if ratio is not None else "",
                 *[f"{entry[f'ratio {p}']:.2f}x" if entry.get(f"ratio {p}") is not None
                   else "" for p in peers]]
        lines.append("| " + " | ".join(cells) + " |")
    return [*lines, ""]


def write_report(path: Path, outcomes: list[Outcome], *, peers_dir: Path, repeat: int,
                 quick: bool) -> None:
    lines = ["# Benchmark results", "",
             "Written by `benchmarks/run_all.py` (`make bench`); docs/benchmarks.md says what "
             "each workload is. Ratios: how many times better mlpipe is than the baseline "
             "(baseline/value for times, value/baseline for throughput), the median of the "
             "per-run ratios.", "",
             *machine_section(peers_dir, names=[o.name for o in outcomes], repeat=repeat,
                              quick=quick)]
    for outcome in outcomes:
        lines += benchmark_section(outcome)
    peers = next((o for o in outcomes if o.name == PEERS_BENCHMARK), None)
    lines += peers_section(peers)
    path.write_text("\n".join(lines))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per benchmark")
    parser.add_argument("--quick", action="store_true", help="pass --quick (tiny sizes)")
    parser.add_argument("--only", action="append", default=[], metavar="NAME",
                        help="run only this benchmark (repeatable, or comma-separated)")
    parser.add_argument("--output", type=Path, default=HERE / "RESULTS.md")
    parser.add_argument("--benchmarks-dir", type=Path, default=HERE)
    parser.add_argument("--peers-dir", type=Path, default=HERE.parent / ".peers")
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    scripts = discover(args.benchmarks_dir)
    only = {n.strip().removesuffix(".py") for o in args.only for n in o.split(",") if n.strip()}
    unknown = sorted(only - {s.stem for s in scripts})
    if unknown:
        parser.error(f"unknown benchmark(s) {unknown}; known: {sorted(s.stem for s in scripts)}")
    scripts = [s for s in scripts if not only or s.stem in only]

    outcomes = []
    for script in scripts:
        print(f"{script.stem}: {args.repeat} run(s){' --quick' if args.quick else ''}",
              flush=True)
        outcome = run_benchmark(script, repeat=args.repeat, quick=args.quick)
        if outcome.error:
            print(f"  {script.stem} FAILED: {outcome.error}", flush=True)
        outcomes.append(outcome)
    write_report(args.output, outcomes, peers_dir=args.peers_dir, repeat=args.repeat,
                 quick=args.quick)
    failed = [o.name for o in outcomes if o.error]
    print(f"wrote {args.output}" + (f"; failed: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
