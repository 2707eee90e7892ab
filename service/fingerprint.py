"""Network fingerprints of anonymous viewers: a keyed, daily-rotating hash of address and UA.

The key of a day is derived from ENGAGEMENT_SESSION_SECRET and the UTC date, so the
fingerprints of two days cannot be linked to each other (nor to the session hashes, which
use the secret itself). The address is the one the trusted-proxy rules resolve, IPv6 by its
/64 (one subscriber holds a whole /64). Only the hash is ever stored, in view_fingerprints.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac

from service.ratelimit import limit_key


class Fingerprinter:
    """fingerprint(address, user_agent) -> 40 hex chars, with today's key."""

    def __init__(self, session_secret: str) -> None:
        self._secret = session_secret.encode()
        self._day: dt.date | None = None
        self._mac: hmac.HMAC | None = None

    def _today(self) -> hmac.HMAC:
        today = dt.datetime.now(dt.UTC).date()
        if self._mac is None or today != self._day:
            day_key = hmac.new(self._secret, b"view-fingerprint:" + today.isoformat().encode(),
                               hashlib.sha256).digest()
            self._mac = hmac.new(day_key, digestmod=hashlib.sha256)
            self._day = today
        return self._mac

    def of(self, address: str, user_agent: str | None) -> str:
        digest = self._today().copy()
        # The address part cannot contain a newline, so no two pairs give the same message.
        digest.update(limit_key(address).encode() + b"\n"
                      + (user_agent or "").encode("utf-8", "surrogatepass"))
        return digest.hexdigest()[:40]
