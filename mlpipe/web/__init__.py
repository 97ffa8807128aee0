"""The web server: REST API (``/api/v1``), auth, metrics, and the pages built on them.

``mlpipe.web.app.create_app`` builds the FastAPI application; ``mlpipe webserver`` serves it
with uvicorn. Importing this package imports nothing heavy: FastAPI, argon2 and
prometheus-client are imported by the modules that need them.

May import: mlpipe.scheduler, mlpipe.runtime, mlpipe.store, mlpipe.connections,
mlpipe.settings, mlpipe.core, mlpipe.errors, mlpipe.masking; FastAPI, Starlette, uvicorn,
Jinja2, itsdangerous, argon2-cffi and prometheus-client.
"""
