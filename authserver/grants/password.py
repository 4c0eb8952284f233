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
from sqlalchemy import select

from authserver import events
from authserver import throttle
from authserver.db import get_session
from authserver.grants.common import TOKEN_ENDPOINT_AUTH_METHODS
from authserver.grants.common import check_client_grant
from authserver.grants.common import get_lifetimes
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

        if throttle.get_locked_until(session, digest, at) is not None:
            events.log_event(
                "password_grant_locked", logging.WARNING, client_id=client_id
            )
            raise InvalidGrantError(INVALID_CREDENTIALS)

        user = None
        if key is not None:
            user = session.scalar(select(User).where(User.username == key))
        if user is None or not user.is_active:
            check_dummy_password(password)
            self._fail(session, digest, at, client_id, None)
        if not check_password(password, user.password_hash):
            self._fail(session, digest, at, client_id, user.id)

        throttle.clear(session, digest)
        _rehash_if_needed(user, password, at)
        session.commit()
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
        if locked_until is not None:
            events.log_event(
                "username_locked",
                logging.WARNING,
                client_id=client_id,
                user_id=user_id,
                locked_seconds=locked_until - at,
            )
        raise InvalidGrantError(INVALID_CREDENTIALS)

    def create_token_response(self) -> tuple[int, dict[str, Any], list[Any]]:
        """Start a token family and issue its first pair."""
        session = get_session()
        client = self.request.client
        user = self.request.user
        lifetimes = get_lifetimes(client)
        at = now()

        issued, family_id = issue_first_token(
            session,
            client,
            user,
            self.request.scope,
            lifetimes,
            at,
            include_refresh_token=client.check_grant_type("refresh_token"),
        )
        session.commit()
        events.log_event(
            "token_issued",
            client_id=client.client_id,
            user_id=user.id,
            grant_type=self.GRANT_TYPE,
            family_id=family_id,
        )
        return 200, issued.to_response(), self.TOKEN_RESPONSE_HEADER


def _rehash_if_needed(user: User, password: str, at: int) -> None:
    # A changed AUTHSERVER_BCRYPT_ROUNDS takes effect at each user's next
    # successful sign-in, the only time the clear password is known.
    rounds = current_app.config["AUTHSERVER_BCRYPT_ROUNDS"]
    if get_hash_rounds(user.password_hash) != rounds:
        user.password_hash = hash_password(password)
        user.updated_at = at
        logger.info("Rehashed the password of user %s at cost %s", user.id, rounds)
