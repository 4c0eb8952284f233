"""JWT access tokens (RFC 9068) and the keys that sign them.

Private keys are stored encrypted with AES-GCM under a key derived from
``AUTHSERVER_SECRET_KEY``, so a copy of the database alone cannot sign
tokens. Each process caches decrypted keys by ``kid``; which key is
current is read from the database, so a rotation made by the admin command
reaches every process at once.
"""

from __future__ import annotations

import json
import os
import secrets
from typing import TYPE_CHECKING
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from flask import current_app
from joserfc import jwt
from joserfc.jwk import ECKey
from joserfc.jwk import KeyParameters
from joserfc.jwk import RSAKey
from sqlalchemy import or_
from sqlalchemy import select

from authserver.models import SigningKey
from authserver.security import now

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

ALGORITHMS = ("RS256", "ES256")
JWT_TYPE = "at+jwt"
NONCE_BYTES = 12

PrivateKey = RSAKey | ECKey


def create_access_token(
    client_id: str,
    user_id: int | None,
    scope: str,
    jti: str,
    issued_at: int,
    lifetime: int,
) -> str:
    """Sign a JWT access token with the claims of RFC 9068 section 2.2.

    A token issued to a client for itself has the client as its subject
    (RFC 9068 section 2.2).
    """
    row = get_current_key()
    key = _load_private_key(row)
    subject = str(user_id) if user_id is not None else client_id

    header = {"typ": JWT_TYPE, "alg": row.algorithm, "kid": row.kid}
    claims: dict[str, Any] = {
        "iss": current_app.config["AUTHSERVER_ISSUER"],
        "sub": subject,
        "aud": get_audience(),
        "client_id": client_id,
        "scope": scope,
        "jti": jti,
        "iat": issued_at,
        "exp": issued_at + lifetime,
    }
    return jwt.encode(header, claims, key, algorithms=[row.algorithm])


def get_audience() -> str:
    """Return the ``aud`` claim: the configured audience, else the issuer."""
    audience: str = current_app.config["AUTHSERVER_ACCESS_TOKEN_AUDIENCE"]
    return audience or current_app.config["AUTHSERVER_ISSUER"]


def get_current_key() -> SigningKey:
    """Return the key that signs new tokens, creating the first one if needed.

    The key is read, and the first key created and committed, in a
    session of its own, so that a grant's transaction never contains a key
    that might be rolled back after a token was signed with it.
    """
    statement = (
        select(SigningKey)
        .where(SigningKey.retired_at.is_(None))
        .order_by(SigningKey.created_at.desc(), SigningKey.kid)
        .limit(1)
    )
    factory = current_app.extensions["authserver.sessionmaker"]
    with factory() as session:
        row = session.scalar(statement)
        if row is None:
            create_key(session, current_app.config["AUTHSERVER_JWT_ALGORITHM"])
            session.commit()
            row = session.scalar(statement)
        session.expunge(row)
    return row  # type: ignore[no-any-return]


def create_key(session: Session, algorithm: str) -> SigningKey:
    """Generate a key pair for ``algorithm`` and add it to ``session``."""
    kid = secrets.token_urlsafe(12)
    key: PrivateKey
    if algorithm == "RS256":
        key = RSAKey.generate_key(2048, parameters={"kid": kid}, private=True)
    elif algorithm == "ES256":
        key = ECKey.generate_key("P-256", parameters={"kid": kid}, private=True)
    else:
        raise ValueError(f"Unsupported signing algorithm {algorithm!r}.")

    public = key.as_dict(private=False)
    public.update({"kid": kid, "alg": algorithm, "use": "sig"})
    row = SigningKey(
        kid=kid,
        algorithm=algorithm,
        encrypted_private_key=_encrypt(key.as_pem(private=True)),
        public_jwk=json.dumps(public),
        created_at=now(),
    )
    session.add(row)
    return row


def rotate_keys(session: Session, algorithm: str) -> SigningKey:
    """Retire the current keys and add a new one; return the new key.

    A retired key stays published until every token it signed has
    expired: the access token lifetime after its retirement.
    """
    at = now()
    lifetime = current_app.config["AUTHSERVER_ACCESS_TOKEN_LIFETIME_SECONDS"]
    for row in session.scalars(
        select(SigningKey).where(SigningKey.retired_at.is_(None))
    ):
        row.retired_at = at
        row.expires_at = at + lifetime
    return create_key(session, algorithm)


def get_published_keys(session: Session) -> list[SigningKey]:
    """Return the keys whose public parts belong in the JWKS document."""
    statement = (
        select(SigningKey)
        .where(or_(SigningKey.expires_at.is_(None), SigningKey.expires_at > now()))
        .order_by(SigningKey.created_at.desc(), SigningKey.kid)
    )
    return list(session.scalars(statement))


def get_jwks(session: Session) -> dict[str, list[dict[str, Any]]]:
    """Return the JWKS document (RFC 7517 section 5) of the published keys."""
    keys = [json.loads(row.public_jwk) for row in get_published_keys(session)]
    return {"keys": keys}


def _load_private_key(row: SigningKey) -> PrivateKey:
    cache: dict[str, PrivateKey] = current_app.extensions.setdefault(
        "authserver.signing_keys", {}
    )
    key = cache.get(row.kid)
    if key is None:
        pem = _decrypt(row.encrypted_private_key)
        parameters: KeyParameters = {"kid": row.kid}
        if row.algorithm == "RS256":
            key = RSAKey.import_key(pem, parameters=parameters)
        else:
            key = ECKey.import_key(pem, parameters=parameters)
        cache[row.kid] = key
    return key


def _get_cipher() -> AESGCM:
    secret = current_app.config["AUTHSERVER_SECRET_KEY"].encode("utf-8")
    derived = HKDF(
        algorithm=hashes.SHA256(),
        length=32,
        salt=None,
        info=b"authserver signing key encryption",
    ).derive(secret)
    return AESGCM(derived)


def _encrypt(plaintext: bytes) -> bytes:
    nonce = os.urandom(NONCE_BYTES)
    return nonce + _get_cipher().encrypt(nonce, plaintext, None)


def _decrypt(data: bytes) -> bytes:
    nonce, ciphertext = data[:NONCE_BYTES], data[NONCE_BYTES:]
    return _get_cipher().decrypt(nonce, ciphertext, None)
