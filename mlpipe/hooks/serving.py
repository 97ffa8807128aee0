"""``ServingClient``: the HTTP client of an ``mlpipe serve`` endpoint (used by
DeployModelOperator and the demo); needs only requests."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from mlpipe.errors import ServingError


class ServingClient:
    """Talks to one ``mlpipe serve`` endpoint, e.g. ``http://127.0.0.1:8000``.

    ``token`` (default: ``MLPIPE_SERVE_TOKEN``) is sent as a bearer token, as the endpoint
    started with ``--token`` requires on ``/predict`` and ``/reload``.
    """

    def __init__(self, base_url: str, timeout: float = 30.0, token: str | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.token = token if token is not None else os.environ.get("MLPIPE_SERVE_TOKEN")

    def health(self) -> dict[str, Any]:
        """``GET /health`` (a 503 "waiting" answer is returned, not raised)."""
        return self._call("GET", "/health", allow=(503,))

    def metadata(self) -> dict[str, Any]:
        """``GET /metadata``: model URI, version, classes, preprocessing."""
        return self._call("GET", "/metadata")

    def reload(self) -> dict[str, Any]:
        """``POST /reload``: follow the alias now; returns the served version."""
        return self._call("POST", "/reload")

    def predict(self, images: Sequence[tuple[str, bytes]]) -> dict[str, Any]:
        """``POST /predict`` with ``(filename, bytes)`` pairs as multipart ``files``."""
        files = [("files", (name, data, "application/octet-stream")) for name, data in images]
        return self._call("POST", "/predict", files=files)

    def _call(self, method: str, path: str, allow: tuple[int, ...] = (),
              **kwargs: Any) -> dict[str, Any]:
        import requests

        url = self.base_url + path
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        try:
            response = requests.request(method, url, timeout=self.timeout, headers=headers,
                                        **kwargs)
        except requests.RequestException as exc:
            raise ServingError(f"serving endpoint {url} is unreachable: "
                               f"{type(exc).__name__}") from None
        if response.status_code >= 400 and response.status_code not in allow:
            raise ServingError(f"serving endpoint {method} {url} answered "
                               f"{response.status_code}: {_detail(response)}")
        body: dict[str, Any] = response.json()
        return body


def _detail(response: Any) -> str:
    try:
        return str(response.json().get("detail", response.text))[:300]
    except ValueError:
        return str(response.text)[:300]
