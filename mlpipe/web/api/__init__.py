"""The REST API under ``/api/v1``: Airflow 2.10's stable-API request and response shapes.

One module per family of routes; each turns store records into Airflow's JSON shapes and
calls the engine's run control for changes (``mlpipe.scheduler``), as the CLI does.
"""
