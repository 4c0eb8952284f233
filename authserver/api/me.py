"""The protected API: information about the token's user."""

from __future__ import annotations

from authlib.integrations.flask_oauth2 import current_token
from flask import Blueprint

from authserver.bearer import require_oauth

bp = Blueprint("api", __name__, url_prefix="/api")


@bp.get("/me")
@require_oauth("profile")
def me() -> dict[str, object]:
    """Return the id and username of the user the token was issued to."""
    return {
        "sub": str(current_token.user_id),
        "id": current_token.user_id,
        "username": current_token.username,
    }
