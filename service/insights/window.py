"""Time windows of the insights endpoints: `from`/`to` ranges, `days`, whole-hour time zones."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from service.errors import BadRequest

HOUR = timedelta(hours=1)
DEFAULT_RANGE = timedelta(days=7)
MAX_RANGE = timedelta(days=366)
MIN_DATE = datetime(2000, 1, 1, tzinfo=UTC)
MAX_DATE = datetime(2200, 1, 1, tzinfo=UTC)
_DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_ZONE_NAME = re.compile(r"^[A-Za-z0-9_+\-]+(/[A-Za-z0-9_+\-]+)*$")


@dataclass(frozen=True, slots=True)
class Window:
    """Hour buckets b with start <= b < end (UTC)."""

    start: datetime
    end: datetime

    def whole_days(self) -> tuple[datetime, datetime]:
        """[day_start, day_end): the UTC days wholly inside; empty (both `end`) if none."""
        midnight = self.start.replace(hour=0)
        first = midnight if midnight == self.start else midnight + timedelta(days=1)
        last = self.end.replace(hour=0, minute=0, second=0, microsecond=0)
        return (first, last) if first < last else (self.end, self.end)

    def params(self) -> dict[str, datetime]:
        day_start, day_end = self.whole_days()
        return {"start": self.start, "end": self.end, "day_start": day_start,
                "day_end": day_end}


def current_hour(now: datetime) -> datetime:
    return now.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def _parse_instant(name: str, raw: str, *, end_of_day: bool) -> datetime:
    """An ISO 8601 date or date-time (naive means UTC); a date `to` means the end of that day."""
    text = raw.strip()
    problem = (f"`{name}` must be an ISO 8601 date (2024-05-01) or date-time "
               f"(2024-05-01T12:00:00Z), got {raw[:40]!r}")
    whole_day = bool(_DATE_ONLY.match(text))
    try:
        if whole_day:
            day = date.fromisoformat(text)
            value = datetime(day.year, day.month, day.day, tzinfo=UTC)
        else:
            value = datetime.fromisoformat(text)
            value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except (ValueError, OverflowError) as exc:
        raise BadRequest(problem) from exc
    if not MIN_DATE <= value < MAX_DATE:
        raise BadRequest(f"`{name}` must be between {MIN_DATE.year} and {MAX_DATE.year}")
    return value + timedelta(days=1) if whole_day and end_of_day else value


def parse_range(raw_from: str | None, raw_to: str | None, now: datetime) -> Window:
    """The hour buckets from `from`'s hour up to `to` (exclusive; counts are hourly, so a
    `to` inside an hour takes that whole hour).

    Defaults: `to` is now (so the current, partial hour counts), `from` 7 days before `to`.
    A date-only `to` includes that whole day.
    """
    end = (_parse_instant("to", raw_to, end_of_day=True) if raw_to
           else current_hour(now) + HOUR)
    if end != current_hour(end):
        end = current_hour(end) + HOUR
    start = (_parse_instant("from", raw_from, end_of_day=False) if raw_from
             else end - DEFAULT_RANGE)
    start = current_hour(start)
    if start >= end:
        raise BadRequest("`from` must be before `to`")
    if end - start > MAX_RANGE:
        raise BadRequest(f"the range from `from` to `to` may span at most {MAX_RANGE.days} days")
    return Window(start, end)


def last_days(days: int, now: datetime) -> Window:
    """The days * 24 hour buckets up to and including the current one."""
    end = current_hour(now) + HOUR
    return Window(end - timedelta(days=days), end)


def whole_hour_zone(name: str | None, now: datetime) -> tzinfo:
    """An IANA zone whose UTC offset is a whole number of hours now (UTC when not given).

    Hour buckets are UTC hours: only a whole-hour offset maps each onto one local hour.
    """
    if name is None or name in {"UTC", "Etc/UTC"}:
        return UTC
    if len(name) > 64 or not _ZONE_NAME.match(name):
        raise BadRequest(f"`tz` must be an IANA time zone name such as Europe/Berlin, "
                         f"got {name[:40]!r}")
    try:
        zone = ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise BadRequest(f"`tz` {name!r} is not a known IANA time zone") from exc
    offset = now.astimezone(zone).utcoffset() or timedelta(0)
    if offset % HOUR:
        minutes = int(offset.total_seconds() // 60)
        hours, rest = divmod(abs(minutes), 60)
        raise BadRequest(f"`tz` {name!r} is {'-' if minutes < 0 else '+'}{hours}:{rest:02d} from "
                         f"UTC now; the heatmap only supports zones with a whole-hour offset")
    return zone


def last_calendar_days(days: int, now: datetime) -> Window:
    """Today (UTC) and the days - 1 days before it, midnight to midnight."""
    today = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return Window(today - timedelta(days=days - 1), today + timedelta(days=1))
