"""Reusable task layouts that the shipped pipelines (``pipelines/``) are built from."""
