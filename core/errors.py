"""The CoreError family: conditions a user must be told about, raised at the adapters."""

from __future__ import annotations


class CoreError(Exception):
    """Base of every error the dashboard and the CLI show to the user as a message.

    Programmer mistakes raise ValueError / TypeError instead; those are bugs, not messages.
    """


class StoreUnavailableError(CoreError):
    """The Qdrant store cannot be reached or opened (server down, bad URL, bad API key)."""


class StoreLockedError(CoreError):
    """The embedded store is held by another process and cannot be opened safely."""


class NotFoundError(CoreError):
    """A project, dataset, embedding space, collection or item does not exist."""


class DimensionMismatchError(CoreError):
    """Vectors do not have the size the embedding space was created with."""


class BadInputError(CoreError):
    """A user-supplied file or value cannot be used (bad CSV, unknown column, corrupt image...)."""


class ModelLoadError(CoreError):
    """A model cannot be loaded (offline, wrong name, unsupported architecture)."""


class NotEnoughDataError(CoreError):
    """Too few points for the requested computation (e.g. UMAP on 3 points)."""


class UnsupportedOperationError(CoreError):
    """The operation does not apply here (e.g. text search in a space with no text side)."""


class PermissionDeniedError(CoreError):
    """The acting user's role does not allow this action (core.auth.require names both)."""


class StoreOutdatedError(CoreError):
    """The store was written by an older embedscope layout: run `embedscope migrate` (or the
    dashboard's Migrate button) before using it."""


class StoreTooNewError(CoreError):
    """The store (or one of its documents) was written by a newer embedscope than this one."""


class BadBoxError(BadInputError):
    """A detection box that cannot be cut from its image (empty after clipping, NaN, x1 <= x0).

    `index` is the box's position in the list given, so a pipeline can reject that one box
    (naming it) and keep the image and its other boxes."""

    def __init__(self, message: str, index: int) -> None:
        super().__init__(message)
        self.index = index

    def __reduce__(self) -> tuple[type[BadBoxError], tuple[str, int]]:
        # Keeps `index` when the error crosses a process boundary (pickled by a worker pool).
        return (type(self), (str(self), self.index))
