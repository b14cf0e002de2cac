"""Who may do what: roles, permissions, the acting identity, and the check every writing use case makes."""

from core.auth.identity import actor_for_claims, claims_email, local_actor, role_for_claims, who_am_i
from core.auth.roles import SYSTEM, Actor, Permission, Role, require, system_actor
from core.errors import PermissionDeniedError

__all__ = [
    "SYSTEM",
    "Actor",
    "Permission",
    "PermissionDeniedError",
    "Role",
    "actor_for_claims",
    "claims_email",
    "local_actor",
    "require",
    "role_for_claims",
    "system_actor",
    "who_am_i",
]
