"""run_all.py writes RESULTS.md (machine, one table per benchmark, peers) and reports failures;
peers_compare.py skips peers that are not installed. No timing thresholds here."""

from __future__ import annotations

from pathlib import Path

import pytest
from bench_loader import BENCHMARKS, load

TABLE_HEADER = ("| workload | metric | unit | median | min | max | baseline | baseline median "
                "| ratio | target |")

FAILING = '''
import sys
print("about to fail")
print("first problem", file=sys.stderr)
print("RuntimeError: the workload broke", file=sys.stderr)
sys.exit(3)
'''

FINE = '''
import argparse, json, sys
from pathlib import Path
sys.path.insert(0, {benchmarks!r})
from _report import Figure, add_arguments, emit
parser = argparse.ArgumentParser()
add_arguments(parser)
args = parser.parse_args()
emit("fine", [Figure("tiny", "wall time", "s", 2.0, 4.0, "plain", target="< 5 s")], args.json)
'''




def test_one_quick_benchmark_writes_machine_section_and_table(tmp_path: Path) -> None:
    out = tmp_path / "RESULTS.md"
    code = load("run_all").main(["--quick", "--repeat", "1", "--only", "persisted_path",
                                 "--output", str(out), "--peers-dir", str(tmp_path / "none")])
    assert code == 0
    text = out.read_text()
    for row in ("| cores |", "| memory |", "| CPU |", "| OS |", "| Python |", "| mlpipe |",
                "| torch |", "| mlflow |", "| sqlalchemy |", "| peer airflow |",
                "| peer prefect |", "| peer dagster |", "| peer luigi |"):
        assert row in text, row
    assert "not installed (make bench-peers)" in text
    assert "| benchmarks | persisted_path |" in text and "| runs | 1 per benchmark (--quick" in text
    assert "## persisted_path" in text and TABLE_HEADER in text
    assert "| chain-3 hand-off | p95 | ms |" in text and "< 50 ms |" in text
    assert "## Peers" in text and "`peers_compare` was not run." in text


def test_a_failing_benchmark_is_reported_and_the_others_still_run(tmp_path: Path) -> None:
    folder = tmp_path / "benchmarks"
    folder.mkdir()
    (folder / "broken.py").write_text(FAILING)
    (folder / "fine.py").write_text(FINE.format(benchmarks=str(BENCHMARKS)))
    (folder / "_helper.py").write_text("raise SystemExit('helpers are not benchmarks')\n")
    out = tmp_path / "RESULTS.md"
    code = load("run_all").main(["--repeat", "2", "--benchmarks-dir", str(folder),
                                 "--output", str(out), "--peers-dir", str(tmp_path)])
    assert code == 1
    text = out.read_text()
    assert "## broken" in text
    assert "**FAILED**: run 1 of 2 exited 3: RuntimeError: the workload broke" in text
    assert "## fine" in text and "_helper" not in text
    assert "| tiny | wall time | s | 2 | 2 | 2 | plain | 4 | 2.00x | < 5 s |" in text


def test_unknown_only_name_lists_the_benchmarks(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        load("run_all").main(["--only", "nope", "--output", str(tmp_path / "R.md")])
    assert exited.value.code == 2  # argparse: a usage error
    err = capsys.readouterr().err
    assert "unknown benchmark(s) ['nope']" in err and "persisted_path" in err


def test_peers_compare_quick_skips_missing_peers(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    figures = load("peers_compare").main(["--quick", "--peers-dir", str(tmp_path)])
    printed = capsys.readouterr().out
    for peer in ("airflow", "prefect", "dagster", "luigi"):
        assert f"peer {peer} not installed: run make bench-peers" in printed
    workloads = {f.workload for f in figures}
    assert workloads == {"chain-4 per-task overhead", "fan-out 1->3->1 per-task overhead",
                         "persisted chain-3 per-task overhead"}
    assert all(f.baseline is None and f.value > 0 for f in figures)


def test_peers_table_puts_each_peer_beside_mlpipe() -> None:
    run_all = load("run_all")
    compare = load("peers_compare")
    figures = compare.figures_for("chain-9", {"mlpipe": 1.0, compare.LOCAL_VARIANT: 0.5},
                                  {"airflow": 40.0, "luigi": 2.0})
    rows = [{**vars(f), "ratio": f.ratio} for f in figures]
    outcome = run_all.Outcome("peers_compare", runs=[rows])
    text = "\n".join(run_all.peers_section(outcome))
    assert ("| workload | mlpipe | airflow | luigi | fastest peer | mlpipe vs fastest "
            "| vs airflow | vs luigi |") in text
    assert "| --- | ---: | ---: | ---: | --- | ---: | ---: | ---: |" in text
    assert "| chain-9 | 1 | 40 | 2 | luigi | 2.00x | 40.00x | 2.00x |" in text
    # every variant gets its ratio to each peer
    assert (f"| chain-9, {compare.LOCAL_VARIANT} | 0.5 | 40 | 2 | luigi | 4.00x | 80.00x "
            "| 4.00x |") in text
