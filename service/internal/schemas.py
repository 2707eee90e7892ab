"""Bodies of the internal endpoints called by the site backend."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec

from service.ids import Id, Position
from service.sources import ClickSource, ViewSource
from service.tracking.schemas import Variant

AwareDatetime = Annotated[datetime, msgspec.Meta(tz=True, description="RFC 3339 with offset")]
RawSessionKey = Annotated[str, msgspec.Meta(max_length=256)]


class ProjectIn(msgspec.Struct, frozen=True):
    owner_id: Id
    is_private: bool
    created_at: AwareDatetime


class ProjectOut(msgspec.Struct, frozen=True):
    project_id: int
    status: Literal["created", "updated"]


class LikeIn(msgspec.Struct, frozen=True):
    project_id: Id
    user_id: Id
    action: Literal["like", "unlike"]


class LikeOut(msgspec.Struct, frozen=True):
    status: Literal["recorded", "unchanged"]


class ImportView(msgspec.Struct, frozen=True):
    project_id: Id
    created_at: AwareDatetime
    source: ViewSource = "direct"
    user_id: Id | None = None
    session_key: RawSessionKey | None = None


class ImportImpression(msgspec.Struct, frozen=True):
    project_id: Id
    created_at: AwareDatetime
    source: ClickSource
    position: Position | None = None
    variant: Variant | None = None


class ImportClick(ImportImpression, frozen=True):
    """An impression's fields, and who clicked (impressions store no viewer)."""

    user_id: Id | None = None
    session_key: RawSessionKey | None = None


class ImportLike(msgspec.Struct, frozen=True):
    project_id: Id
    user_id: Id
    action: Literal["like", "unlike"]
    created_at: AwareDatetime


class ImportIn(msgspec.Struct, frozen=True):
    views: list[ImportView] = []
    clicks: list[ImportClick] = []
    likes: list[ImportLike] = []
    impressions: list[ImportImpression] = []


class ImportOut(msgspec.Struct, frozen=True):
    views: int
    clicks: int
    likes: int
    skipped: int
    impressions: int = 0


class AnonymizedOut(msgspec.Struct, frozen=True):
    anonymized: int
