"""The one output format every benchmark shares, so ``make bench`` can collect them.

A benchmark script builds a list of :class:`Figure` (one per workload and metric, each with
the baseline measured in the same run) and calls :func:`emit`: it prints a readable table
and, with ``--json PATH``, writes the figures as JSON for ``benchmarks/run_all.py``, which
repeats each script and writes ``benchmarks/RESULTS.md`` (median, min, max, ratios).
Every script also takes ``--quick`` (tiny sizes: ``make test`` runs each once that way).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass
class Figure:
    """One measured figure of one workload, with its same-run baseline (if it has one).

    ``ratio`` is how many times better mlpipe is than the baseline: baseline/value when
    lower is better (times, overheads), value/baseline when higher is better (throughput).
    """

    workload: str
    metric: str
    unit: str
    value: float
    baseline: float | None = None
    baseline_label: str = ""
    higher_is_better: bool = False
    target: str = ""

    @property
    def ratio(self) -> float | None:
        if self.baseline is None or self.baseline == 0 or self.value == 0:
            return None
        return self.value / self.baseline if self.higher_is_better else self.baseline / self.value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``--quick`` and ``--json PATH``, the two options ``run_all.py`` relies on."""
    parser.add_argument("--quick", action="store_true", help="tiny sizes (smoke run)")
    parser.add_argument("--json", type=Path, default=None, help="also write figures as JSON")


def emit(benchmark: str, figures: list[Figure], json_path: Path | None) -> None:
    """Print ``figures`` as a table; with ``json_path``, write them there as JSON too."""
    print(f"\n{benchmark}")
    for f in figures:
        line = f"  {f.workload:<44} {f.metric:<22} {f.value:>11.4g} {f.unit}"
        if f.baseline is not None:
            line += f"   baseline ({f.baseline_label}) {f.baseline:.4g}"
        if f.ratio is not None:
            line += f"   ratio {f.ratio:.2f}x"
        if f.target:
            line += f"   target {f.target}"
        print(line)
    if json_path is not None:
        rows = [{**asdict(f), "ratio": f.ratio} for f in figures]
        json_path.write_text(json.dumps({"benchmark": benchmark, "figures": rows}, indent=1))
