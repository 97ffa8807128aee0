"""HTTP inference for registered models (``mlpipe serve``), following an alias when it moves.

``mlpipe.serving.app`` needs FastAPI and uvicorn. Its client (what the deploy operator and
the demo use) is ``mlpipe.hooks.serving``: it sits with the other clients of external systems.

May import: mlpipe.ml, mlpipe.tracking, mlpipe.errors; FastAPI and uvicorn.
"""
