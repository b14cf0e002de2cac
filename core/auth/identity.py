"""Who the user is: the local identity (CLI, laptop dashboard) and the role a signed-in user's claims map to."""

from __future__ import annotations

import getpass
from collections.abc import Iterable, Mapping
from typing import Any

from core.auth.roles import Actor, Role
from core.config import Settings


def who_am_i() -> str:
    """The operating-system user (the local actor's default name)."""
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name and no USER variable (some containers)
        return "unknown"


def local_actor(settings: Settings) -> Actor:
    """The CLI's identity, and the dashboard's when sign-in is off: EMBEDSCOPE_ACTOR_NAME (default:
    the OS user) with EMBEDSCOPE_ACTOR_ROLE (default admin: a laptop user owns their store)."""
    return Actor(settings.actor_name or who_am_i(), Role(settings.actor_role))


def _groups(claims: Mapping[str, Any], claim: str) -> tuple[str, ...]:
    """The claim's groups: a list, or one string of comma- or space-separated names."""
    value = claims.get(claim)
    if value is None:
        return ()
    if isinstance(value, str):
        return tuple(g for g in value.replace(",", " ").split() if g)
    if isinstance(value, Iterable):
        return tuple(str(g).strip() for g in value if str(g).strip())
    return (str(value),)


def claims_email(claims: Mapping[str, Any]) -> str | None:
    """The claims' e-mail, lower-cased; None when absent or marked unverified (an unverified
    address must not grant a role by its domain)."""
    email = claims.get("email")
    if not isinstance(email, str) or "@" not in email or claims.get("email_verified") is False:
        return None
    return email.strip().lower()


def _matches(rules: Iterable[str], email: str | None, groups: tuple[str, ...]) -> bool:
    """A rule is a group name (exact), an e-mail (any case) or "@domain" (the e-mail's domain)."""
    for rule in (r.strip() for r in rules):
        if not rule:
            continue
        if rule in groups:
            return True
        if email and (rule.lower() == email or (rule.startswith("@") and email.endswith(rule.lower()))):
            return True
    return False


def role_for_claims(claims: Mapping[str, Any], settings: Settings) -> Role | None:
    """The role of a signed-in user from their ID-token claims: the highest role whose list
    (EMBEDSCOPE_ROLE_ADMINS / _EDITORS / _VIEWERS) names one of their groups (claim
    EMBEDSCOPE_ROLE_CLAIM), their e-mail or its "@domain"; else EMBEDSCOPE_DEFAULT_ROLE.
    None: this user gets no access."""
    email = claims_email(claims)
    groups = _groups(claims, settings.role_claim)
    for role, rules in ((Role.ADMIN, settings.role_admins), (Role.EDITOR, settings.role_editors),
                        (Role.VIEWER, settings.role_viewers)):
        if _matches(rules, email, groups):
            return role
    return None if settings.default_role == "none" else Role(settings.default_role)


def actor_for_claims(claims: Mapping[str, Any], settings: Settings) -> Actor | None:
    """The Actor of a signed-in user (named by e-mail, else name, else subject); None: no access."""
    role = role_for_claims(claims, settings)
    if role is None:
        return None
    email = claims_email(claims)
    raw_email = claims.get("email")
    name = next((str(v) for v in (raw_email, claims.get("name"), claims.get("sub")) if v and str(v).strip()),
                "unknown")
    return Actor(name, role, email=email, groups=_groups(claims, settings.role_claim))
