"""Insights endpoints for the site's staff (service token): CTR, A/B variants, heatmap, retention."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from litestar import Router, get
from litestar.params import QueryParameter
from psycopg_pool import AsyncConnectionPool

from service.dependencies import Injected
from service.errors import BadRequest, NotFound, error_responses
from service.ids import PathId, parse_path_id
from service.insights import store
from service.insights.schemas import (
    WEEKDAYS,
    Cohort,
    CtrOut,
    HeatmapKind,
    HeatmapOut,
    PositionCtr,
    RetentionOut,
    SourceCtr,
    VariantComparison,
    VariantCtr,
    VariantsOut,
)
from service.insights.stats import CONFIDENCE, newcombe, proportion
from service.insights.window import last_calendar_days, last_days, parse_range, whole_hour_zone
from service.sources import ClickSource
from service.tracking.schemas import Variant

CTR_PATH = "/insights/ctr/"
VARIANTS_PATH = "/insights/variants/"
HEATMAP_PATH = "/insights/heatmap/"
RETENTION_PATH = "/projects/{project_id:str}/retention/"
DEFAULT_CONTROL = "control"
ERRORS = error_responses(400, 401, 429, 503)
ERRORS_404 = error_responses(400, 401, 404, 429, 503)

Source = Annotated[ClickSource | None, QueryParameter(description="feed; all feeds when omitted")]
From = Annotated[str | None, QueryParameter(name="from", description=(
    "ISO 8601 date or date-time (UTC unless an offset is given), rounded down to the hour; "
    "default: 7 days before `to`"))]
To = Annotated[str | None, QueryParameter(description=(
    "ISO 8601 date-time (exclusive, rounded up to the hour) or date (that whole day "
    "included); default: the end of the current hour"))]
Days = Annotated[int, QueryParameter(ge=1, le=365, description="how many days back, 1-365")]


def _now() -> datetime:
    return datetime.now(UTC)


@get(CTR_PATH, operation_id="insightsCtr", responses=ERRORS)
async def ctr_by_position(pool: Injected[AsyncConnectionPool], source: Source = None,
                          from_: From = None, to: To = None) -> CtrOut:
    """Click-through rate per feed and position, with Wilson 95 % intervals."""
    window = parse_range(from_, to, _now())
    async with pool.connection() as conn:
        rows = await store.ctr_by_position(conn, source, window)
    positions: list[PositionCtr] = []
    totals: dict[str, list[int]] = {}
    for feed, position, impressions, clicks in rows:
        rate = proportion(clicks, impressions)
        positions.append(PositionCtr(feed, position, impressions, clicks, rate.rate, rate.low,
                                     rate.high))
        total = totals.setdefault(feed, [0, 0])
        total[0] += impressions
        total[1] += clicks
    summary = []
    for feed, (impressions, clicks) in totals.items():
        rate = proportion(clicks, impressions)
        summary.append(SourceCtr(feed, impressions, clicks, rate.rate, rate.low, rate.high))
    return CtrOut(source=source, from_=window.start, to=window.end, confidence=CONFIDENCE,
                  positions=positions, totals=summary)


@get(VARIANTS_PATH, operation_id="insightsVariants", responses=ERRORS)
async def compare_variants(
    pool: Injected[AsyncConnectionPool], source: Source = None, from_: From = None, to: To = None,
    control: Annotated[Variant | None, QueryParameter(description=(
        "the variant the others are compared with; default `control` if it has data, "
        "else the first variant by name"))] = None,
) -> VariantsOut:
    """CTR per A/B variant, and each variant's difference from the control (Newcombe 95 %)."""
    window = parse_range(from_, to, _now())
    async with pool.connection() as conn:
        rows = await store.ctr_by_variant(conn, source, window)
    rates = {variant: proportion(clicks, impressions) for variant, impressions, clicks in rows}
    if control is not None and control not in rates:
        known = ", ".join(rates) or "none"
        raise BadRequest(f"`control` variant {control!r} has no impressions or clicks in this "
                         f"range; variants with data: {known}")
    chosen = control or (DEFAULT_CONTROL if DEFAULT_CONTROL in rates else next(iter(rates), None))
    variants = [VariantCtr(name, r.trials, r.successes, r.rate, r.low, r.high)
                for name, r in rates.items()]
    comparisons: list[VariantComparison] = []
    if chosen is not None:
        base = rates[chosen]
        for name, rate in rates.items():
            diff = newcombe(rate, base) if name != chosen else None
            if diff is None:
                continue
            lift = diff.difference / base.rate if base.rate else None
            comparisons.append(VariantComparison(name, chosen, diff.difference, diff.low,
                                                 diff.high, lift, diff.significant))
    return VariantsOut(source=source, from_=window.start, to=window.end, confidence=CONFIDENCE,
                       control=chosen, variants=variants, comparisons=comparisons)


@get(HEATMAP_PATH, operation_id="insightsHeatmap", responses=ERRORS_404)
async def heatmap(
    pool: Injected[AsyncConnectionPool],
    kind: Annotated[HeatmapKind, QueryParameter(description="views, clicks or likes")],
    project_id: Annotated[int | None, QueryParameter(ge=1, le=2**63 - 1, description=(
        "one project; the whole site when omitted"))] = None,
    days: Days = 28,
    tz: Annotated[str | None, QueryParameter(description=(
        "IANA time zone with a whole-hour UTC offset now, e.g. Europe/Berlin; default UTC"))]
    = None,
) -> HeatmapOut:
    """Events per weekday x hour over the last `days` days (7 x 24, Monday first)."""
    now = _now()
    zone = whole_hour_zone(tz, now)
    window = last_days(days, now)
    async with pool.connection() as conn:
        if project_id is not None and not await store.project_exists(conn, project_id):
            raise NotFound("project not found")
        rows = await store.hourly_counts(conn, kind, project_id, window)
    cells = [[0] * 24 for _ in WEEKDAYS]
    for bucket, count in rows:
        local = bucket.astimezone(zone)  # per bucket, so DST changes land on the right hour
        cells[local.weekday()][local.hour] += count
    return HeatmapOut(kind=kind, project_id=project_id, days=days, tz=tz or "UTC",
                      from_=window.start, to=window.end, weekdays=list(WEEKDAYS), cells=cells,
                      total=sum(map(sum, cells)))


@get(RETENTION_PATH, operation_id="projectRetention", responses=ERRORS_404)
async def retention(pool: Injected[AsyncConnectionPool], project_id: PathId,
                    days: Days = 28) -> RetentionOut:
    """Share of a project's viewers who came back on a later day, by weekly cohort."""
    pid = parse_path_id(project_id, "project_id")
    window = last_calendar_days(days, _now())
    async with pool.connection() as conn:
        if not await store.project_exists(conn, pid):
            raise NotFound("project not found")
        rows = await store.retention_cohorts(conn, pid, window)
    cohorts = [Cohort(week_start, viewers, returning, returning / viewers)
               for week_start, viewers, returning in rows]
    viewers = sum(c.viewers for c in cohorts)
    returning = sum(c.returning for c in cohorts)
    return RetentionOut(project_id=pid, days=days, from_=window.start, to=window.end,
                        viewers=viewers, returning=returning,
                        share=returning / viewers if viewers else None, cohorts=cohorts)


router = Router(
    path="/api/v1",
    route_handlers=[ctr_by_position, compare_variants, heatmap, retention],
    tags=["insights"],
    security=[{"serviceToken": []}],
)
