"""The model being served, swapped atomically when the alias it follows moves."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from mlpipe.errors import ModelNotReadyError

log = logging.getLogger("mlpipe.serve")


@dataclass(frozen=True)
class ServedModel:
    """One loaded model: what was asked for, the version it resolved to, and its spec."""

    model_uri: str
    version: str | None
    model: Any
    spec: Any  # mlpipe.ml.inference.ModelSpec
    loaded_at: float = field(default_factory=time.time)


class ModelHolder:
    """Loads ``model_uri`` and, for ``models:/name@alias``, follows the alias.

    ``refresh()`` looks up the alias and loads the version it points to if that changed;
    it is called by ``POST /reload`` and by the endpoint's polling loop. A failed load keeps
    the current model serving.
    """

    def __init__(self, model_uri: str, tracking_uri: str) -> None:
        from mlpipe.tracking.models import parse_registered_uri

        self.model_uri = model_uri
        self.tracking_uri = tracking_uri
        parsed = parse_registered_uri(model_uri)
        self.name, _, self.alias = parsed if parsed else (None, None, None)
        self._current: ServedModel | None = None
        self._lock = threading.Lock()
        self.last_error: str | None = None

    @property
    def follows_alias(self) -> bool:
        return self.alias is not None

    @property
    def current(self) -> ServedModel:
        """The model serving now.

        Raises:
            ModelNotReadyError: nothing is loaded yet.
        """
        served = self._current
        if served is None:
            raise ModelNotReadyError(self.last_error or f"{self.model_uri} is not loaded yet")
        return served

    def refresh(self) -> bool:
        """Load the model if it is not loaded or its alias moved; True if it changed.

        Raises:
            ModelRegistryError: the model cannot be found or loaded (the current model, if
                any, keeps serving).
        """
        from mlpipe.tracking.models import ModelRegistryError, alias_version

        with self._lock:
            if self._current is not None and self.alias is None:
                return False  # a fixed version or run: nothing to follow
            if self.alias is not None and self.name is not None:
                version = alias_version(self.tracking_uri, self.name, self.alias)
                if version is None:
                    self.last_error = (f"model {self.name!r} has no alias {self.alias!r} yet; "
                                       "waiting for a deployment")
                    if self._current is None:
                        raise ModelRegistryError(self.last_error)
                    return False
                if self._current is not None and self._current.version == version:
                    return False
                target = f"models:/{self.name}/{version}"
            else:
                target = self.model_uri
            served = self._load(target)
            previous = self._current.version if self._current else None
            self._current = served
            self.last_error = None
            log.info("serving %s version %s (was %s)", self.model_uri, served.version, previous)
            return True

    def _load(self, uri: str) -> ServedModel:
        from mlpipe.ml.inference import ModelSpec
        from mlpipe.tracking.models import SPEC_KEY, ModelRegistryError, load_model

        loaded = load_model(uri, self.tracking_uri)
        if SPEC_KEY not in loaded.metadata:
            raise ModelRegistryError(
                f"{uri} carries no {SPEC_KEY!r} metadata (classes and preprocessing); log it "
                "with TorchTrainOperator to serve it")
        return ServedModel(model_uri=self.model_uri, version=loaded.version, model=loaded.model,
                           spec=ModelSpec.from_dict(loaded.metadata[SPEC_KEY]))
