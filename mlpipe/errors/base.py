"""The root of the tree and the "did you mean" helper every message uses."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = ["MlpipeError", "did_you_mean"]


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """Return ``"; did you mean 'x'?"`` for the closest known name, or ``""``."""
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


class MlpipeError(Exception):
    """Root of every error mlpipe raises on purpose."""
