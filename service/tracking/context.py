"""What the track calls share in a worker: viewer identity, the writers, the view cap."""

from __future__ import annotations

from dataclasses import dataclass

from litestar.types import Scope

from engagement.settings import Settings
from service.fingerprint import Fingerprinter
from service.identity import IdentityResolver
from service.ratelimit import ClientAddress
from service.tracking.writers import ClickWriter, ImpressionWriter, ViewWriter


@dataclass(slots=True, kw_only=True)
class TrackingContext:
    """Built once per worker in the app's lifespan; the track handlers close over it."""

    settings: Settings
    identity: IdentityResolver
    views: ViewWriter
    clicks: ClickWriter
    impressions: ImpressionWriter
    clients: ClientAddress | None = None
    fingerprints: Fingerprinter | None = None  # None: anonymous views are not capped

    def fingerprint(self, scope: Scope, user_agent: str | None) -> str | None:
        """The network fingerprint an anonymous view is capped by; None with the cap off."""
        if self.fingerprints is None or not self.clients:
            return None
        return self.fingerprints.of(self.clients.of(scope), user_agent)

    async def drain(self) -> None:
        """Wait for every queued and running write (graceful shutdown)."""
        await self.views.drain()
        await self.clicks.drain()
        await self.impressions.drain()
