"""Pick an ``ArtifactStore`` by URI scheme, as MLflow's artifact repository registry does.

Built-in backends are registered as ``"module:Class"`` strings and imported on first use,
so ``import mlpipe.artifacts`` loads neither boto3 nor mlflow.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Mapping
from typing import Any

from mlpipe.artifacts.base import ArtifactStore
from mlpipe.errors import UnknownSchemeError

__all__ = [
    "ArtifactStoreRegistry",
    "StoreFactory",
    "default_registry",
    "known_schemes",
    "open_store",
    "register_store",
    "uri_scheme",
]

#: A store class or any callable building one from keyword options; or ``"module:attr"``.
StoreFactory = Callable[..., ArtifactStore] | str

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):")


def _file_store(**options: Any) -> ArtifactStore:
    from mlpipe.artifacts.file import FileArtifactStore

    return FileArtifactStore(**options)


def _s3_store(**options: Any) -> ArtifactStore:
    from mlpipe.artifacts.s3 import S3ArtifactStore  # boto3: only when an s3:// URI is used

    return S3ArtifactStore(**options)


def _mlflow_store(**options: Any) -> ArtifactStore:
    from mlpipe.artifacts.mlflow_store import MlflowArtifactStore  # mlflow: likewise

    return MlflowArtifactStore(**options)


#: the built-in stores, each imported on first use
_BUILTIN: dict[str, StoreFactory] = {
    "file": _file_store, "s3": _s3_store, "runs": _mlflow_store, "models": _mlflow_store,
}


def uri_scheme(uri: str) -> str:
    """The lower-cased scheme of ``uri`` (``""`` when it has none)."""
    match = _SCHEME.match(uri)
    return match.group(1).lower() if match else ""


class ArtifactStoreRegistry:
    """Maps URI schemes to store factories; ``open(uri)`` builds the store for a URI."""

    def __init__(self, factories: Mapping[str, StoreFactory] | None = None) -> None:
        self._factories: dict[str, StoreFactory] = {}
        for scheme, factory in (factories or {}).items():
            self.register(scheme, factory)

    def register(self, scheme: str, factory: StoreFactory) -> None:
        """Serve ``scheme`` with ``factory`` (replacing an earlier registration)."""
        self._factories[scheme.lower()] = factory

    def schemes(self) -> list[str]:
        """The registered schemes, sorted."""
        return sorted(self._factories)

    def open(self, uri: str, **options: Any) -> ArtifactStore:
        """A store for ``uri``'s scheme, built with ``options``.

        Raises:
            UnknownSchemeError: no store is registered for the scheme; lists the known ones.
        """
        scheme = uri_scheme(uri)
        factory = self._factories.get(scheme)
        if factory is None:
            raise UnknownSchemeError(uri, scheme, self._factories)
        if isinstance(factory, str):
            factory = _load(factory)
        return factory(**options)


def _load(target: str) -> Callable[..., ArtifactStore]:
    """A store registered by name, ``"package.module:attr"``: the plugin point for stores
    that live outside mlpipe (``register_store("gs", "my_pkg.gcs:GcsStore")``)."""
    module_name, _, attr = target.partition(":")
    loaded: Callable[..., ArtifactStore] = getattr(importlib.import_module(module_name), attr)
    return loaded


default_registry = ArtifactStoreRegistry(_BUILTIN)


def register_store(scheme: str, factory: StoreFactory) -> None:
    """Serve ``scheme`` with ``factory`` in the default registry (for plugins)."""
    default_registry.register(scheme, factory)


def known_schemes() -> list[str]:
    """The schemes the default registry serves, sorted."""
    return default_registry.schemes()


def open_store(
    uri: str,
    *,
    s3_options: Mapping[str, Any] | None = None,
    mlflow_options: Mapping[str, Any] | None = None,
) -> ArtifactStore:
    """The artifact store for ``uri``, chosen by its scheme.

    Args:
        uri: Any URI of the store's scheme (``file://``, ``s3://``, ``runs:/``, ``models:/``).
        s3_options: Keyword arguments of ``S3ArtifactStore`` (endpoint_url, keys, region,
            max_workers...), used for ``s3://``.
        mlflow_options: ``tracking_uri`` / ``registry_uri`` for ``runs:/`` and ``models:/``.

    Raises:
        UnknownSchemeError: the scheme is not registered; the message lists known ones.
    """
    scheme = uri_scheme(uri)
    options: Mapping[str, Any] = {}
    if scheme == "s3":
        options = s3_options or {}
    elif scheme in ("runs", "models"):
        options = mlflow_options or {}
    return default_registry.open(uri, **options)
