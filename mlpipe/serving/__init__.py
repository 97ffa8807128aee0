"""HTTP inference for registered models (``mlpipe serve``), following an alias when it moves.

``mlpipe.serving.app`` needs FastAPI and uvicorn; ``mlpipe.serving.client`` only requests.
"""
