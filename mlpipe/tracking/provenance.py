"""Where code and configuration came from: git commit and config hashes for tags."""

from __future__ import annotations

import functools
import hashlib
import json
import subprocess
from pathlib import Path
from typing import Any


@functools.lru_cache(maxsize=128)
def git_commit(folder: str) -> str | None:
    """The commit checked out in the repository containing ``folder`` (None: not a repo)."""
    try:
        result = subprocess.run(["git", "-C", folder, "rev-parse", "HEAD"], capture_output=True,
                                text=True, timeout=5, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    commit = result.stdout.strip()
    return commit if result.returncode == 0 and len(commit) == 40 else None


def config_hash(value: Any) -> str:
    """A stable sha256 of a JSON-able configuration (keys sorted, non-JSON values as repr)."""
    text = json.dumps(value, sort_keys=True, default=repr, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def dag_folder_commit(fileloc: str) -> str | None:
    return git_commit(str(Path(fileloc).resolve().parent))
