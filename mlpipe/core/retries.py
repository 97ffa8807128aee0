"""When the next try of a failed task instance may start."""

from __future__ import annotations

from datetime import timedelta


def retry_delay_for(
    try_number: int,
    *,
    retry_delay: timedelta,
    exponential_backoff: bool,
    max_retry_delay: timedelta | None,
) -> timedelta:
    """The wait after try ``try_number`` failed (doubling each try with backoff, capped)."""
    delay = retry_delay
    if exponential_backoff:
        delay = retry_delay * (2 ** max(try_number - 1, 0))
    if max_retry_delay is not None and delay > max_retry_delay:
        delay = max_retry_delay
    return delay
