#!/usr/bin/env bash
# User-space instructions per task of dag.test() on a chain of 200 no-op tasks, counted by
# valgrind's callgrind: deterministic where wall time on a shared machine varies by +-20%.
# (runs of 4 minus runs of 1) / 600 tasks, so interpreter start-up and imports cancel out.
# Usage: bash benchmarks/tools/callgrind_per_task.sh [PYTHON]   (needs valgrind; ~2 min)
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
python="${1:-$here/../.venv/bin/python}"
script='
import logging, sys
sys.path.insert(0, sys.argv[1])
from engine_overhead import build_chain, run_dag
logging.getLogger().setLevel(logging.WARNING)
dag = build_chain(200)
for _ in range(int(sys.argv[2])):
    run_dag(dag, "step__198")
'
count() {
  valgrind --tool=callgrind --callgrind-out-file=/dev/null "$python" -c "$script" "$here" "$1" \
    2>&1 | awk '/Collected/ {print $4}'
}
one=$(count 1)
four=$(count 4)
echo "instructions per task: $(( (four - one) / 600 ))"
