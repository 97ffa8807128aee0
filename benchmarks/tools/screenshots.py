"""Save screenshots of the web UI's main pages to ``docs/img/`` (the README shows them).

Runs the browser test (``tests/web/browser``) in Debian's headless Chromium at 1366x768 with
``WEBUI_SCREENSHOTS_DIR`` set: DAG list, trigger form, grid, graph, a running and a finished
task's log. Needs ``chromium`` and ``chromium-driver`` (``make install``).

    python benchmarks/tools/screenshots.py [--out docs/img]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "img",
                        help="folder for the PNG files (default: docs/img)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "WEBUI_SCREENSHOTS_DIR": str(args.out.resolve()),
           "MLFLOW_DISABLE_TELEMETRY": "true"}
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "tests/web/browser", "-k", "op_triggers"], cwd=ROOT, env=env,
                          check=False)
    for png in sorted(args.out.glob("*.png")):
        print(f"{png.relative_to(ROOT) if png.is_relative_to(ROOT) else png}: "
              f"{png.stat().st_size} bytes")
    return done.returncode


if __name__ == "__main__":
    sys.exit(main())
