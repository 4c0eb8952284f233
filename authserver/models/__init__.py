"""SQLAlchemy models. Importing this package registers every table."""

from authserver.models.client import Client
from authserver.models.key import SigningKey
from authserver.models.login import LoginThrottle
from authserver.models.token import Token
from authserver.models.token import TokenFamily
from authserver.models.user import User

__all__ = ["Client", "LoginThrottle", "SigningKey", "Token", "TokenFamily", "User"]
