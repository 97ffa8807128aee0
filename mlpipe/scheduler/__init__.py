"""Scheduling: creating DAG runs and driving them to the end with an executor."""
