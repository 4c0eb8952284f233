"""The protected API: information about the token's user."""

from __future__ import annotations

from authlib.integrations.flask_oauth2 import current_token
from flask import Blueprint
from flask import Response
from flask import abort
from flask import json

from authserver.bearer import require_oauth
from authserver.errors import NO_STORE_HEADERS

bp = Blueprint("api", __name__, url_prefix="/api")


@bp.get("/me")
@require_oauth("profile")  # type: ignore[untyped-decorator]
def me() -> dict[str, object]:
    """Return the id and username of the user the token was issued to."""
    if current_token.user_id is None:
        # A client credentials token acts for a client, not a user.
        abort(
            Response(
                json.dumps(
                    {
                        "error": "insufficient_scope",
                        "error_description": "The token was not issued to a user.",
                    }
                ),
                status=403,
                headers=NO_STORE_HEADERS,
                content_type="application/json",
            )
        )
    return {
        "sub": str(current_token.user_id),
        "id": current_token.user_id,
        "username": current_token.username,
    }
