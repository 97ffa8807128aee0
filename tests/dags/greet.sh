#!/usr/bin/env bash
# Rendered with Jinja before it runs: the values below come from the run's context.
echo "script for {{ dag.dag_id }}"
echo "hello {{ params.name }} on {{ ds }}"
