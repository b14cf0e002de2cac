"""The Qdrant store: open_store() picks the embedded (Qdrant Edge) or server (qdrant-client) adapter.

Both adapters implement core.store.base.VectorStore with the same behaviour (one set of tests
runs on both). qdrant_client is imported only when the server adapter is used, because it is
slow to import and the embedded default does not need it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from core.config import Settings
from core.store.base import VectorStore
from core.store.edge import EdgeStore
from core.store.names import validate_name

if TYPE_CHECKING:
    from core.store.server import ServerStore

__all__ = ["EdgeStore", "ServerStore", "VectorStore", "open_store", "validate_name"]


def open_store(settings: Settings, *, check_schema: bool = True) -> VectorStore:
    """The store the settings point at: a Qdrant server when qdrant_url is set, else the
    embedded store under settings.embedded_path (a folder, or ':memory:').

    A store written by an older layout raises StoreOutdatedError, a newer one StoreTooNewError
    (core.store.schema); check_schema=False opens it anyway, for `embedscope migrate` only.
    """
    if settings.qdrant_url:
        from core.store.server import ServerStore

        key = settings.qdrant_api_key.get_secret_value() if settings.qdrant_api_key else None
        key = key or None  # QDRANT_API_KEY= (empty, as compose files often pass it) means none
        return ServerStore(url=settings.qdrant_url, api_key=key, timeout=settings.qdrant_timeout_s,
                           check_schema=check_schema)
    return EdgeStore(settings.embedded_path, check_schema=check_schema)


def __getattr__(name: str) -> Any:
    # Lazy export of ServerStore (keeps `import core.store` free of qdrant_client).
    if name == "ServerStore":
        from core.store.server import ServerStore

        return ServerStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
