"""OAuth clients registered by an operator."""

from __future__ import annotations

import hmac

from sqlalchemy import Boolean
from sqlalchemy import Integer
from sqlalchemy import String
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column

from authserver.db import Base
from authserver.db import UnixTime

CONFIDENTIAL_AUTH_METHODS = ("client_secret_basic", "client_secret_post")
PUBLIC_AUTH_METHOD = "none"


class Client(Base):
    """A registered OAuth client and what it may do.

    Lists such as ``grant_types`` are stored as space-separated strings, the
    same form that RFC 6749 uses for scopes. The secret is stored only as a
    keyed digest; :attr:`secret_key` must be set before Authlib calls
    :meth:`check_client_secret`.
    """

    __tablename__ = "clients"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    client_id: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    secret_digest: Mapped[str | None] = mapped_column(String(64))
    previous_secret_digest: Mapped[str | None] = mapped_column(String(64))
    previous_secret_expires_at: Mapped[int | None] = mapped_column(UnixTime)
    grant_types: Mapped[str] = mapped_column(String(200))
    scope: Mapped[str] = mapped_column(String(1000))
    default_scope: Mapped[str | None] = mapped_column(String(1000))
    auth_methods: Mapped[str] = mapped_column(String(100))
    can_introspect: Mapped[bool] = mapped_column(Boolean, default=False)
    refresh_token_lifetime_seconds: Mapped[int | None] = mapped_column(Integer)
    refresh_token_idle_seconds: Mapped[int | None] = mapped_column(Integer)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[int] = mapped_column(UnixTime)

    @property
    def is_public(self) -> bool:
        """Whether the client has no secret and authenticates with ``none``."""
        return self.auth_methods == PUBLIC_AUTH_METHOD

    def get_client_id(self) -> str:
        """Return the public client identifier."""
        return self.client_id

    def get_allowed_scope(self, scope: str | None) -> str:
        """Return the requested scope; grants check it before this call."""
        return scope or ""

    def check_grant_type(self, grant_type: str) -> bool:
        """Return whether the client registered ``grant_type``."""
        return grant_type in self.grant_types.split()

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        """Return whether the client may authenticate with ``method``."""
        return method in self.auth_methods.split()

    def check_client_secret(self, client_secret: str) -> bool:
        """Compare ``client_secret`` with the stored digests.

        The previous secret is accepted until ``previous_secret_expires_at``
        so that deployments can roll over to a rotated secret.
        """
        from authserver.security import digest_secret
        from authserver.security import now

        presented = digest_secret(client_secret)
        if self.secret_digest and hmac.compare_digest(presented, self.secret_digest):
            return True

        if not self.previous_secret_digest:
            return False
        if (self.previous_secret_expires_at or 0) <= now():
            return False
        return hmac.compare_digest(presented, self.previous_secret_digest)
