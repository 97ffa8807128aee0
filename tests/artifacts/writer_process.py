"""Do one artifact-store write in a process of its own, so a test can SIGKILL it mid-copy.

Usage: ``python writer_process.py '{"op": "put_file", "source": ..., "uri": ...,
"s3_options": {...}}'``.
"""

from __future__ import annotations

import json
import sys

from mlpipe.artifacts import open_store


def main(argv: list[str]) -> None:
    """Run ``store.<op>(source, uri)`` as the JSON spec in ``argv[1]`` says."""
    spec = json.loads(argv[1])
    store = open_store(spec["uri"], s3_options=spec.get("s3_options") or None)
    getattr(store, spec["op"])(spec["source"], spec["uri"])


if __name__ == "__main__":
    main(sys.argv)
