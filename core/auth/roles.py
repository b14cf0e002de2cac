"""Roles, permissions and the acting identity: who may do what, checked by every core use case that writes."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from core.errors import PermissionDeniedError


class Role(StrEnum):
    """What a user may do: admin > editor > viewer (each may do all the lower roles may)."""

    VIEWER = "viewer"
    EDITOR = "editor"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return _RANKS[self]


_RANKS = {Role.VIEWER: 0, Role.EDITOR: 1, Role.ADMIN: 2}


class Permission(StrEnum):
    """One kind of action a use case checks for (the lowest role allowed is `minimum_role`)."""

    EXPLORE = "explore"
    SEARCH = "search"
    EXPORT = "export"
    INGEST = "ingest"
    TAG = "tag"
    RELABEL = "relabel"
    COLLECTIONS = "collections"
    ANALYSE = "analyse"  # run and persist analyses, maps, comparisons
    DELETE = "delete"
    MIGRATE = "migrate"
    BACKUP = "backup"
    RESTORE = "restore"
    IMPORT_PROJECT = "import_project"
    MANAGE_JOBS = "manage_jobs"  # cancel other users' jobs

    @property
    def minimum_role(self) -> Role:
        return _MINIMUM[self]


_MINIMUM: dict[Permission, Role] = {
    **{p: Role.VIEWER for p in (Permission.EXPLORE, Permission.SEARCH, Permission.EXPORT)},
    **{p: Role.EDITOR for p in (Permission.INGEST, Permission.TAG, Permission.RELABEL, Permission.COLLECTIONS,
                                Permission.ANALYSE)},
    **{p: Role.ADMIN for p in (Permission.DELETE, Permission.MIGRATE, Permission.BACKUP, Permission.RESTORE,
                               Permission.IMPORT_PROJECT, Permission.MANAGE_JOBS)},
}


@dataclass(frozen=True)
class Actor:
    """Who acts: `name` is what the history records as "who" (the e-mail when signed in, else the
    OS or configured CLI identity); `role` decides what they may do."""

    name: str
    role: Role
    email: str | None = None
    groups: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise ValueError("an Actor needs a non-empty name")
        if not isinstance(self.role, Role):
            raise ValueError(f"Actor.role must be a Role ({', '.join(r.value for r in Role)}), got {self.role!r}")

    def can(self, permission: Permission) -> bool:
        """Whether this actor's role allows `permission`."""
        return self.role.rank >= permission.minimum_role.rank


def require(actor: Actor, permission: Permission, what: str) -> None:
    """Raise PermissionDeniedError unless `actor` may do `permission`; `what` names the action
    for the message ("deleting dataset 'train'"). Use cases call it before anything is written."""
    if not isinstance(actor, Actor):  # a forgotten actor must never pass as "allowed"
        raise ValueError(f"require() needs an Actor, got {type(actor).__name__}")
    if not actor.can(permission):
        article = "an" if actor.role.value[0] in "aeiou" else "a"
        raise PermissionDeniedError(f"{actor.name} is {article} {actor.role.value}: {what} needs the "
                                    f"{permission.minimum_role.value} role")


SYSTEM = Actor("embedscope", Role.ADMIN)


def system_actor() -> Actor:
    """The identity of internal jobs (loading the demo), never of a user's action."""
    return SYSTEM
