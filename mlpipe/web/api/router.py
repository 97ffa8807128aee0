"""All API routes in one router."""

from __future__ import annotations

from fastapi import APIRouter

from mlpipe.web.api import (
    dag_runs,
    dags,
    datasets,
    health,
    logs,
    monitoring,
    task_instances,
    users,
)


def build_router() -> APIRouter:
    router = APIRouter()
    for module in (health, monitoring, dags, dag_runs, task_instances, logs, users,
                   datasets):
        router.include_router(module.router())
    return router
