"""Scheduling: creating DAG runs and driving them to the end with an executor.

May import: mlpipe.executors, mlpipe.runtime, mlpipe.store, mlpipe.tracking, mlpipe.connections,
mlpipe.settings, mlpipe.core. Never an operator or mlpipe.ml.
"""
