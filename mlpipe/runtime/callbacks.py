"""Calling ``on_*_callback``s: a function, a notifier, or a list of them; each failure is
logged (masked) and never changes a state."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from mlpipe.masking import redact

__all__ = ["as_list", "invoke_callbacks"]


def as_list(callbacks: Any) -> list[Any]:
    """``None``, one callable or a sequence of them, as a list."""
    if not callbacks:
        return []
    if isinstance(callbacks, Sequence) and not isinstance(callbacks, str):
        return list(callbacks)
    return [callbacks]


def invoke_callbacks(callbacks: Any, context: dict[str, Any], *, what: str,
                     logger: logging.Logger) -> None:
    """Call each callback with ``context``; one that raises is logged and skipped."""
    for callback in as_list(callbacks):
        name = getattr(callback, "__name__", None) or type(callback).__name__
        try:
            callback(context)
        except Exception as exc:  # a broken callback is logged, it does not change the state
            logger.error("%s %s failed: %s", what, name,
                         redact(f"{type(exc).__name__}: {exc}"))
