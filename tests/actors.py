"""Actors for tests that call the writing use cases (core.auth): an admin by default, a named editor."""

from __future__ import annotations

from core.auth import Actor, Role

ADMIN = Actor("test-admin", Role.ADMIN)
EDITOR = Actor("test-editor", Role.EDITOR)
VIEWER = Actor("test-viewer", Role.VIEWER)


def user(name: str, role: Role = Role.EDITOR) -> Actor:
    """A named actor (history records `name` as who); an editor unless told."""
    return Actor(name, role)
