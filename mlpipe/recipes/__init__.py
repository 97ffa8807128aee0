"""Reusable task layouts that the shipped pipelines (``pipelines/``) are built from.

May import: mlpipe.operators, mlpipe.core, mlpipe.errors.
"""
