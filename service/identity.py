"""Who is viewing: a signed-in user (JWT) or an anonymous session (hashed key)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

import jwt

from service.errors import Unauthorized
from service.ids import parse_id

SESSION_COOKIE = "sessionid"
SESSION_HEADER = "x-session-key"
ISSUED_COOKIE = "et_sid"
MAX_SESSION_KEY_LENGTH = 256


@dataclass(frozen=True, slots=True)
class Viewer:
    user_id: int | None
    session_hash: str  # HMAC of the session key, '' when there is none
    issued_session: str | None = None  # a new et_sid to set on the response
    # The session is one this service hands out (a new et_sid, or the et_sid cookie sent
    # back): a browser's retry may come with or without it and is still the same sender.
    ours: bool = False

    @property
    def dedup_key(self) -> str:
        return f"u:{self.user_id}" if self.user_id is not None else f"s:{self.session_hash}"


class IdentityResolver:
    """Turns request credentials into a Viewer; secrets stay inside this object."""

    def __init__(self, jwt_secret: str, session_secret: str) -> None:
        self._jwt_secret = jwt_secret
        # Keyed once; each hash copies this state instead of re-deriving the padded keys.
        self._session_mac = hmac.new(session_secret.encode(), digestmod=hashlib.sha256)

    def hash_session(self, session_key: str) -> str:
        """Keyed hash of a session key, 40 hex chars: the only form we ever store."""
        digest = self._session_mac.copy()
        digest.update(session_key.encode())
        return digest.hexdigest()[:40]

    def user_from_token(self, token: str) -> int:
        """The user id of a valid HS256 token; 401 for anything else."""
        try:
            claims = jwt.decode(
                token, self._jwt_secret, algorithms=["HS256"],
                options={"require": ["exp", "sub"]},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthorized("the bearer token has expired; sign in again") from None
        except jwt.PyJWTError:
            raise Unauthorized("the bearer token is not valid") from None
        user_id = parse_id(claims.get("sub"))
        if user_id is None:
            raise Unauthorized("the bearer token's `sub` must be a user id in plain digits")
        return user_id

    def resolve(self, authorization: str | None, cookies: dict[str, str],
                session_header: str | None) -> Viewer:
        user_id = None
        if authorization is not None:
            scheme, _, token = authorization.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise Unauthorized("the Authorization header must be `Bearer <token>`")
            user_id = self.user_from_token(token.strip())
        session_key = cookies.get(SESSION_COOKIE) or session_header or ""
        ours = False
        if not session_key:
            session_key = cookies.get(ISSUED_COOKIE) or ""
            ours = bool(session_key)
        session_key = session_key[:MAX_SESSION_KEY_LENGTH]
        issued = None
        if not session_key and user_id is None:
            issued = session_key = secrets.token_urlsafe(24)
            ours = True
        session_hash = self.hash_session(session_key) if session_key else ""
        return Viewer(user_id=user_id, session_hash=session_hash, issued_session=issued,
                      ours=ours)
