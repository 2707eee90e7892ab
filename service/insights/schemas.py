"""Response bodies of the insights endpoints."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

import msgspec

HeatmapKind = Literal["views", "clicks", "likes"]
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


class PositionCtr(msgspec.Struct, frozen=True):
    source: str
    position: int | None
    impressions: int
    clicks: int
    ctr: float | None
    ctr_low: float | None
    ctr_high: float | None


class SourceCtr(msgspec.Struct, frozen=True):
    source: str
    impressions: int
    clicks: int
    ctr: float | None
    ctr_low: float | None
    ctr_high: float | None


class CtrOut(msgspec.Struct, frozen=True):
    source: str | None
    from_: datetime = msgspec.field(name="from")
    to: datetime
    confidence: float
    positions: list[PositionCtr]
    totals: list[SourceCtr]


class VariantCtr(msgspec.Struct, frozen=True):
    variant: str
    impressions: int
    clicks: int
    ctr: float | None
    ctr_low: float | None
    ctr_high: float | None


class VariantComparison(msgspec.Struct, frozen=True):
    """ctr(variant) - ctr(control) with Newcombe's interval; significant if it excludes 0."""

    variant: str
    control: str
    difference: float
    difference_low: float
    difference_high: float
    relative_lift: float | None
    significant: bool


class VariantsOut(msgspec.Struct, frozen=True):
    source: str | None
    from_: datetime = msgspec.field(name="from")
    to: datetime
    confidence: float
    control: str | None
    variants: list[VariantCtr]
    comparisons: list[VariantComparison]


class HeatmapOut(msgspec.Struct, frozen=True):
    kind: HeatmapKind
    project_id: int | None
    days: int
    tz: str
    from_: datetime = msgspec.field(name="from")
    to: datetime
    weekdays: list[str]
    cells: list[list[int]]  # [weekday (Monday first)][hour 0-23]
    total: int


class Cohort(msgspec.Struct, frozen=True):
    week_start: date
    viewers: int
    returning: int
    share: float


class RetentionOut(msgspec.Struct, frozen=True):
    project_id: int
    days: int
    from_: datetime = msgspec.field(name="from")
    to: datetime
    viewers: int
    returning: int
    share: float | None
    cohorts: list[Cohort]
