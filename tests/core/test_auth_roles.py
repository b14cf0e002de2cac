"""core.auth: a signed-in user's claims map to the role the settings give them; require() refuses
with a message naming who, what and the role needed; the local identity comes from the settings."""

from __future__ import annotations

import pytest

from core.auth import (
    Actor,
    Permission,
    PermissionDeniedError,
    Role,
    actor_for_claims,
    local_actor,
    require,
    role_for_claims,
    system_actor,
    who_am_i,
)
from core.config import Settings, load_settings
from core.errors import BadInputError, CoreError


def _settings(**overrides: object) -> Settings:
    base: dict[str, object] = dict(role_admins="ml-admins, Boss@Example.org", role_editors="labelers, @example.com",
                                   role_viewers="guests")
    return load_settings(**{**base, **overrides})


def test_comma_lists_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EMBEDSCOPE_ROLE_ADMINS", " ml-admins ,bob@example.com,, @corp.io ")
    monkeypatch.setenv("EMBEDSCOPE_DEFAULT_ROLE", "none")
    monkeypatch.setenv("EMBEDSCOPE_ROLE_CLAIM", "roles")
    s = load_settings()
    assert s.role_admins == ("ml-admins", "bob@example.com", "@corp.io")
    assert s.role_editors == () and s.default_role == "none" and s.role_claim == "roles"
    monkeypatch.setenv("EMBEDSCOPE_DEFAULT_ROLE", "admin")  # never a default: admins are named
    with pytest.raises(BadInputError, match="EMBEDSCOPE_DEFAULT_ROLE"):
        load_settings()


@pytest.mark.parametrize(("claims", "role"), [
    ({"groups": ["ml-admins", "labelers"]}, Role.ADMIN),  # the highest matching role wins
    ({"groups": ["labelers"], "email": "zed@other.net"}, Role.EDITOR),
    ({"groups": "guests, other"}, Role.VIEWER),  # one string of names
    ({"email": "BOSS@example.org"}, Role.ADMIN),  # e-mails compare in any case
    ({"email": "ann@example.com"}, Role.EDITOR),  # "@domain"
    ({"email": "ann@notexample.com"}, Role.VIEWER),  # not the domain: the default role
    ({"email": "ann@example.com.evil.io"}, Role.VIEWER),
    ({"email": "ann@example.com", "email_verified": False}, Role.VIEWER),  # unverified: no domain rule
    ({"groups": ["ML-ADMINS"]}, Role.VIEWER),  # group names are exact
])
def test_claims_map_to_roles(claims: dict[str, object], role: Role) -> None:
    assert role_for_claims(claims, _settings()) == role


def test_default_role_none_gives_no_access_and_the_claim_is_configurable() -> None:
    s = _settings(default_role="none", role_claim="roles")
    assert role_for_claims({"email": "x@elsewhere.org"}, s) is None
    assert actor_for_claims({"email": "x@elsewhere.org"}, s) is None
    assert role_for_claims({"groups": ["ml-admins"]}, s) is None  # not the configured claim
    assert role_for_claims({"roles": ["ml-admins"]}, s) == Role.ADMIN
    assert role_for_claims({}, _settings(default_role="editor")) == Role.EDITOR


def test_actor_for_claims_is_named_by_email() -> None:
    actor = actor_for_claims({"email": "ann@example.com", "name": "Ann", "sub": "42", "groups": ["g"]}, _settings())
    assert actor == Actor("ann@example.com", Role.EDITOR, email="ann@example.com", groups=("g",))
    nameless = actor_for_claims({"sub": "42"}, _settings())
    assert nameless is not None and nameless.name == "42" and nameless.role == Role.VIEWER


def test_permissions_follow_the_role_order() -> None:
    viewer, editor, admin = (Actor("u", r) for r in (Role.VIEWER, Role.EDITOR, Role.ADMIN))
    assert all(a.can(Permission.EXPLORE) and a.can(Permission.EXPORT) for a in (viewer, editor, admin))
    for p in (Permission.INGEST, Permission.TAG, Permission.RELABEL, Permission.COLLECTIONS, Permission.ANALYSE):
        assert not viewer.can(p) and editor.can(p) and admin.can(p)
    for p in (Permission.DELETE, Permission.MIGRATE, Permission.BACKUP, Permission.RESTORE,
              Permission.IMPORT_PROJECT, Permission.MANAGE_JOBS):
        assert not viewer.can(p) and not editor.can(p) and admin.can(p)


def test_require_names_who_what_and_the_role_needed() -> None:
    viewer = Actor("alice@example.com", Role.VIEWER)
    with pytest.raises(PermissionDeniedError) as refused:
        require(viewer, Permission.DELETE, "deleting dataset 'train'")
    assert str(refused.value) == "alice@example.com is a viewer: deleting dataset 'train' needs the admin role"
    assert isinstance(refused.value, CoreError)
    with pytest.raises(PermissionDeniedError, match="bob is an editor: migrating the store needs the admin role"):
        require(Actor("bob", Role.EDITOR), Permission.MIGRATE, "migrating the store")
    require(Actor("bob", Role.EDITOR), Permission.TAG, "tagging")  # allowed: no error
    with pytest.raises(ValueError, match="needs an Actor"):
        require("root", Permission.TAG, "tagging")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="non-empty name"):
        Actor(" ", Role.ADMIN)


def test_local_actor_from_the_settings() -> None:
    assert local_actor(load_settings()) == Actor(who_am_i(), Role.ADMIN)  # a laptop user owns their store
    assert local_actor(load_settings(actor_name="ci-bot", actor_role="viewer")) == Actor("ci-bot", Role.VIEWER)
    assert local_actor(load_settings(actor_name="  ")).name == who_am_i()
    assert system_actor().role == Role.ADMIN and system_actor().name == "embedscope"
