"""Request and response bodies of the public tracking endpoints."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from service.ids import Id, Position
from service.sources import ClickSource, ViewSource

MAX_BATCH_CLICKS = 50
MAX_BATCH_IMPRESSIONS = 50
# The database CHECK's rule, `variant ~ '^[a-z0-9_-]{1,32}$'`, where `$` is the end of the
# text. msgspec searches with Python's re, whose `$` also matches before a final newline:
# the lookahead refuses that newline (and reads the same in a JSON Schema / ECMA regex).
VARIANT_PATTERN = "^[a-z0-9_-]{1,32}(?!\n)$"
# The feed algorithm an A/B test served; omitted outside experiments.
Variant = Annotated[str, msgspec.Meta(pattern=VARIANT_PATTERN,
                                      description="A/B variant: 1-32 of a-z 0-9 _ -")]
IGNORED: Literal["ignored"] = "ignored"  # the answer to a known bot: 200, nothing stored


class TrackViewIn(msgspec.Struct, frozen=True):
    source: ViewSource = "direct"


class FeedCardIn(msgspec.Struct, frozen=True):
    """A project card in a feed, as a click or an impression reports it."""

    project_id: Id
    source: ClickSource
    position: Position | None = None
    variant: Variant | None = None


class TrackClicksIn(msgspec.Struct, frozen=True):
    clicks: Annotated[list[FeedCardIn],
                      msgspec.Meta(min_length=1, max_length=MAX_BATCH_CLICKS)]


class TrackImpressionsIn(msgspec.Struct, frozen=True):
    impressions: Annotated[list[FeedCardIn],
                           msgspec.Meta(min_length=1, max_length=MAX_BATCH_IMPRESSIONS)]


class TrackStatus(msgspec.Struct, frozen=True):
    status: Literal["recorded", "deduplicated", "ignored"]


class TrackClicksOut(msgspec.Struct, frozen=True, omit_defaults=True):
    count: int
    skipped: int
    status: Literal["ignored"] | None = None  # only for a known bot


class TrackImpressionsOut(msgspec.Struct, frozen=True, omit_defaults=True):
    count: int
    skipped: int
    status: Literal["ignored"] | None = None  # only for a known bot
