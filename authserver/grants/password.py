"""Resource owner password credentials grant, RFC 6749 section 4.3."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING
from typing import Any
from typing import NoReturn

from authlib.oauth2.rfc6749 import InvalidGrantError
from authlib.oauth2.rfc6749 import InvalidRequestError
from authlib.oauth2.rfc6749 import grants
from flask import current_app
from sqlalchemy import Update
from sqlalchemy import select
from sqlalchemy import update

from authserver import events
from authserver import throttle
from authserver.db import get_session
from authserver.grants.common import TOKEN_ENDPOINT_AUTH_METHODS
from authserver.grants.common import check_client_grant
from authserver.grants.common import get_lifetimes
from authserver.grants.common import guard_client
from authserver.grants.common import resolve_scope
from authserver.models import User
from authserver.passwords import UsernameError
from authserver.passwords import check_dummy_password
from authserver.passwords import check_password
from authserver.passwords import get_hash_rounds
from authserver.passwords import hash_password
from authserver.passwords import normalize_username
from authserver.security import now
from authserver.tokens import issue_first_token

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

logger = logging.getLogger(__name__)

INVALID_CREDENTIALS = "Invalid username or password."


class PasswordGrant(grants.ResourceOwnerPasswordCredentialsGrant):
    """The password grant with the error codes that RFC 6749 requires.

    Authlib returns ``invalid_request`` for a wrong password, but section
    5.2 makes it ``invalid_grant``, which this grant returns for an unknown
    user, a wrong password, a disabled user and a locked username alike.
    """

    TOKEN_ENDPOINT_AUTH_METHODS = TOKEN_ENDPOINT_AUTH_METHODS

    def validate_token_request(self) -> None:
        """Authenticate the client, check the request, then the password."""
        client = self.authenticate_token_endpoint_client()
        check_client_grant(client, self.GRANT_TYPE)
        self.request.client = client

        form = self.request.form
        username = form.get("username")
        password = form.get("password")
        if username is None:
            raise InvalidRequestError("The request has no 'username' parameter.")
        if password is None:
            raise InvalidRequestError("The request has no 'password' parameter.")

        self.request.scope = resolve_scope(client, self.request.payload.scope)
        self.request.user = self.authenticate_user(username, password)

    def authenticate_user(self, username: str, password: str) -> User:
        """Return the active user with these credentials.

        :raises InvalidGrantError: the credentials do not match an active
            user, or the username is locked after repeated failures.
        """
        session = get_session()
        at = now()
        client_id = self.request.client.client_id
        try:
            key: str | None = normalize_username(username)
        except UsernameError:
            # No stored username breaks the username rules, so there is no
            # user to look up. Querying anyway would fail on PostgreSQL for
            # a username containing NUL.
            key = None
        digest = throttle.get_username_digest(username if key is None else key)

        if throttle.is_locked(session, digest, at):
            session.commit()
            events.log_event(
                "password_grant_locked", logging.WARNING, client_id=client_id
            )
            raise InvalidGrantError(INVALID_CREDENTIALS)

        user = None
        if key is not None:
            user = session.scalar(select(User).where(User.username == key))
        # Ending the read gives the connection back to the pool, so that
        # the bcrypt check below does not keep it checked out.
        session.commit()
        if user is None or not user.is_active:
            check_dummy_password(password)
            self._fail(session, digest, at, client_id, None)
        if not check_password(password, user.password_hash):
            self._fail(session, digest, at, client_id, user.id)

        throttle.clear(session, digest)
        session.commit()
        self.request.password = password
        events.log_event(
            "password_grant_succeeded", client_id=client_id, user_id=user.id
        )
        return user

    def _fail(
        self,
        session: Session,
        digest: str,
        at: int,
        client_id: str,
        user_id: int | None,
    ) -> NoReturn:
        locked_until = throttle.record_failure(session, digest, at)
        session.commit()
        events.log_event(
            "password_grant_failed",
            logging.WARNING,
            client_id=client_id,
            user_id=user_id,
        )
        self._log_lock(client_id, user_id, locked_until, at)
        raise InvalidGrantError(INVALID_CREDENTIALS)

    def _log_lock(
        self, client_id: str, user_id: int | None, locked_until: int | None, at: int
    ) -> None:
        if locked_until is not None:
            events.log_event(
                "username_locked",
                logging.WARNING,
                client_id=client_id,
                user_id=user_id,
                locked_seconds=locked_until - at,
            )

    def create_token_response(self) -> tuple[int, dict[str, Any], list[Any]]:
        """Start a token family and issue its first pair.

        The transaction first re-checks, by conditional UPDATEs, that the
        user still has the verified password and is active and that the
        client is unchanged. An operator's password reset, disable or
        secret rotation that commits while this request runs then either
        makes it fail or finds and revokes the family it creates.
        """
        session = get_session()
        client = self.request.client
        user = self.request.user
        lifetimes = get_lifetimes(client)
        at = now()

        guards = [
            _guard_user(user, self.request.password, at),
            guard_client(client),
        ]
        issued = issue_first_token(
            session,
            client,
            user,
            self.request.scope,
            lifetimes,
            at,
            include_refresh_token=client.check_grant_type("refresh_token"),
            guards=guards,
        )
        if issued is None:
            session.rollback()
            raise InvalidGrantError(INVALID_CREDENTIALS)
        session.commit()
        events.log_event(
            "token_issued",
            client_id=client.client_id,
            user_id=user.id,
            grant_type=self.GRANT_TYPE,
            family_id=issued.values["family_id"],
        )
        return 200, issued.to_response(), self.TOKEN_RESPONSE_HEADER


def _guard_user(user: User, password: str, at: int) -> Update:
    # The UPDATE matches only if the hash is still the one the password was
    # checked against. A changed AUTHSERVER_BCRYPT_ROUNDS takes effect here,
    # at the user's next sign-in, the only time the clear password is known.
    statement = update(User).where(
        User.id == user.id,
        User.password_hash == user.password_hash,
        User.is_active,
    )
    rounds = current_app.config["AUTHSERVER_BCRYPT_ROUNDS"]
    if get_hash_rounds(user.password_hash) == rounds:
        return statement.values(password_hash=User.password_hash)

    logger.info("Rehashing the password of user %s at cost %s", user.id, rounds)
    return statement.values(password_hash=hash_password(password), updated_at=at)
