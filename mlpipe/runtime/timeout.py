"""Stop a task that runs longer than its ``execution_timeout``."""

from __future__ import annotations

import ctypes
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from mlpipe.errors import TaskTimeoutError


class _Interrupt(BaseException):
    """Raised into the task when its time is up.

    A ``BaseException``, like Airflow's timeout, so ``except Exception`` in task code cannot
    swallow it; ``time_limit`` turns it into ``TaskTimeoutError`` at its boundary.
    """


@contextmanager
def time_limit(seconds: float | None, message: str) -> Iterator[None]:
    """Raise ``TaskTimeoutError(message)`` in this thread after ``seconds``.

    In the main thread a SIGALRM timer interrupts even blocking calls such as ``sleep`` or
    waiting for a subprocess; elsewhere the exception is raised between bytecodes.
    """
    if not seconds:
        yield
        return
    if threading.current_thread() is threading.main_thread():
        def _on_alarm(signum: int, frame: object) -> None:
            raise _Interrupt

        previous = signal.signal(signal.SIGALRM, _on_alarm)
        signal.setitimer(signal.ITIMER_REAL, seconds)
        try:
            yield
        except _Interrupt:
            raise TaskTimeoutError(message) from None
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
        return
    ident = threading.get_ident()
    fired = threading.Event()

    def _raise_in_thread() -> None:
        fired.set()
        ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(ident),
                                                   ctypes.py_object(_Interrupt))

    timer = threading.Timer(seconds, _raise_in_thread)
    timer.daemon = True
    timer.start()
    try:
        yield
    except _Interrupt:
        raise TaskTimeoutError(message) from None
    finally:
        timer.cancel()
        if fired.is_set():  # raised after the block ended: clear it
            ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(ident), None)
