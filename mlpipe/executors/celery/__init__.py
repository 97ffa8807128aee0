"""The Celery executor: tries run on ``mlpipe worker`` processes, fed through a broker.

The broker (Redis or RabbitMQ) only carries "run this try" messages; every state lives in
the metadata database (PostgreSQL). ``app`` builds the Celery application both sides share,
``executor`` is the scheduler's side (``CeleryExecutor``), ``worker`` the worker's (resource
slots, one forked process per try). Celery itself is imported only when one of them starts.
"""

from __future__ import annotations

from mlpipe.executors.celery.executor import CeleryExecutor

__all__ = ["CeleryExecutor"]
