"""Who may do what in the app: reader and admin logins, the admin check, and the refuse-to-start rule.

Readers predict, score files and read every dashboard. Only the admin changes things (registry
aliases and promotion, which rewrites params.yaml; storing alerts and posting them to the
webhook), and only when `CHURN_APP_ADMIN` is set: without it the app is read-only.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

AUTH_ENV = "CHURN_APP_AUTH"
ADMIN_ENV = "CHURN_APP_ADMIN"
ANONYMOUS_ENV = "CHURN_APP_ALLOW_ANONYMOUS"
YES = ("1", "true", "yes", "on")


def _digest(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8")).digest()


@dataclass(frozen=True)
class Login:
    """One user name and the SHA-256 digest of its password (the password itself is not kept)."""

    user: str
    digest: bytes

    @classmethod
    def parse(cls, value: str | None, env: str = AUTH_ENV) -> Login | None:
        """`user:password` (the password may contain `:`), or None when unset; ValueError if malformed."""
        if not value:
            return None
        user, sep, password = value.partition(":")
        if not sep or not user or not password:
            raise ValueError(f"{env} must look like user:password (both non-empty)")
        return cls(user, _digest(password))

    def accepts(self, user: str, password: str) -> bool:
        """Constant-time comparison of both the name and the password digests."""
        same_user = hmac.compare_digest(_digest(user or ""), _digest(self.user))
        same_password = hmac.compare_digest(_digest(password or ""), self.digest)
        return same_user and same_password

    def __repr__(self) -> str:
        return f"Login(user={self.user!r})"


@dataclass(frozen=True)
class Access:
    """The app's logins: `reader` (CHURN_APP_AUTH) and `admin` (CHURN_APP_ADMIN), either optional."""

    reader: Login | None = None
    admin: Login | None = None

    def __post_init__(self) -> None:
        if self.reader and self.admin and self.reader.user == self.admin.user:
            raise ValueError(f"{AUTH_ENV} and {ADMIN_ENV} must name different users")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Access:
        """From CHURN_APP_AUTH and CHURN_APP_ADMIN; a malformed value raises ValueError naming it."""
        env = os.environ if env is None else env
        return cls(Login.parse(env.get(AUTH_ENV), AUTH_ENV), Login.parse(env.get(ADMIN_ENV), ADMIN_ENV))

    @classmethod
    def of(cls, reader: tuple[str, str] | None = None, admin: tuple[str, str] | None = None) -> Access:
        """From (user, password) pairs (tests, benchmarks, scripts)."""
        return cls(
            Login.parse(":".join(reader), AUTH_ENV) if reader else None,
            Login.parse(":".join(admin), ADMIN_ENV) if admin else None,
        )

    @property
    def login_required(self) -> bool:
        return self.reader is not None or self.admin is not None

    def check(self, user: str, password: str) -> bool:
        """Gradio's `auth=` callback: the reader or the admin may sign in."""
        return any(login.accepts(user, password) for login in (self.reader, self.admin) if login)

    def is_admin(self, request: Any) -> bool:
        """True when the request comes from the signed-in admin (no logging: for showing controls)."""
        user = getattr(request, "username", None) if request is not None else None
        return self.admin is not None and user == self.admin.user

    def refusal(self, request: Any, action: str) -> str | None:
        """None when the request comes from the signed-in admin; otherwise why `action` is refused."""
        user = getattr(request, "username", None) if request is not None else None
        if self.admin is None:
            why = "none is configured, so this app is read-only"
        elif user == self.admin.user:
            return None
        elif user:
            why = f"you are signed in as '{user}', a reader"
        else:
            why = "you are not signed in"
        log.warning("refused: %s by %s (%s)", action, user or "an anonymous user", why)
        return f"{action} needs the admin login ({ADMIN_ENV}): {why}. Nothing changed."

    def note(self, action: str) -> str | None:
        """What the UI says next to the changing buttons when nobody may press them (no admin)."""
        if self.admin is not None:
            return None
        return f"{action} needs the admin login ({ADMIN_ENV}): none is configured, so this app is read-only."

    def describe(self) -> str:
        """One line for the start-up log (names only, never passwords)."""
        if not self.login_required:
            return "no login; read-only (no admin)"
        parts = [f"reader '{self.reader.user}'"] if self.reader else []
        parts.append(f"admin '{self.admin.user}'" if self.admin else "no admin: read-only")
        return "login required: " + ", ".join(parts)


def is_loopback(host: str) -> bool:
    """True for addresses only this machine reaches (127.0.0.0/8, ::1, localhost)."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip().strip("[]")).is_loopback
    except ValueError:
        return False  # a host name or an empty string (every interface): reachable from outside


def start_problem(host: str, access: Access, env: Mapping[str, str] | None = None) -> str | None:
    """Why the app must not start on `host`, or None: off loopback it needs a login, unless the
    operator opts out with CHURN_APP_ALLOW_ANONYMOUS=1."""
    env = os.environ if env is None else env
    if is_loopback(host) or access.login_required:
        return None
    if env.get(ANONYMOUS_ENV, "").strip().lower() in YES:
        log.warning("serving on %s without a login (%s): anyone who reaches it can read", host, ANONYMOUS_ENV)
        return None
    return (
        f"refusing to serve on {host} without a login: set {AUTH_ENV}=user:password (readers) and/or "
        f"{ADMIN_ENV}=user:password (admin), or {ANONYMOUS_ENV}=1 to serve without a login on purpose"
    )
