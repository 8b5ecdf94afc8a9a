"""Business days: which dates are worked, in one place's time zone, with its public holidays.

A date is a *holiday* when it is a public holiday of the configured country (and subdivision) as the
`holidays` package knows them, including the "observed" days it adds (a US holiday falling on a Saturday
is observed on the Friday), or one of the calendar's extra holidays. A date is a *business day* when its
weekday is one of the calendar's workdays and it is not a holiday.

Nothing here reads the clock: "today" is always derived from a `now` the caller passes in, converted to
the calendar's time zone, so the same instant can be Monday in Tokyo and still Sunday in Los Angeles.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

WEEKDAY_NAMES: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
"""Weekday names as the config writes them, in `date.weekday()` order (Monday is 0)."""

MONDAY_TO_FRIDAY: frozenset[int] = frozenset(range(5))

_EXAMPLE_COUNTRIES = "e.g. DE, FR, US"


def zone(name: str) -> ZoneInfo:
    """The IANA time zone `name`; ValueError with a message fit for a config error if there is none."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {name!r} (expected an IANA name such as Europe/Berlin, America/New_York or UTC)"
        ) from None


def check_country(code: str) -> str:
    """`code` if the holidays package has public holidays for it; else ValueError naming the problem."""
    import holidays  # noqa: PLC0415 - 3 MiB, loaded when a calendar is configured
    supported = holidays.list_supported_countries()
    if code in supported:
        return code
    if code.upper() in supported:
        raise ValueError(f"unknown country {code!r} (did you mean {code.upper()!r}? codes are upper case)")
    raise ValueError(
        f"unknown country {code!r}: expected an ISO 3166-1 alpha-2 code the holidays package supports "
        f"({_EXAMPLE_COUNTRIES})"
    )


def check_subdivision(country: str, code: str) -> str:
    """`code` if it is a subdivision (or a subdivision alias) of `country`; else ValueError listing them."""
    import holidays  # noqa: PLC0415 - 3 MiB, loaded when a calendar is configured
    entity = holidays.country_holidays(country)
    known = tuple(entity.subdivisions)
    if code in known or code in entity.subdivisions_aliases:
        return code
    codes = [name for name in known if name.isupper()] or list(known)
    listing = f"known: {', '.join(codes)}" if codes else "it has none"
    raise ValueError(f"unknown subdivision {code!r} of {country} ({listing})")


class BusinessCalendar:
    """Workdays, public and extra holidays, and the time zone that decides which date it is.

    Public holidays are computed per year on first use and kept; the object is safe to share between
    threads.
    """

    def __init__(
        self,
        timezone: ZoneInfo,
        workdays: Iterable[int] = MONDAY_TO_FRIDAY,
        country: str | None = None,
        subdivision: str | None = None,
        extra_holidays: Iterable[date] = (),
    ) -> None:
        self.timezone = timezone
        self.workdays = frozenset(workdays)
        if not self.workdays or not self.workdays <= set(range(7)):
            raise ValueError(f"workdays must be weekday numbers 0 (Monday) to 6 (Sunday), got {sorted(self.workdays)}")
        if subdivision is not None and country is None:
            raise ValueError("a subdivision needs a country")
        self.country = country
        self.subdivision = subdivision
        self.extra_holidays = frozenset(extra_holidays)
        self._lock = threading.Lock()
        self._public: dict[int, frozenset[date]] = {}

    def today(self, now: datetime) -> date:
        """The calendar date at instant `now` in this calendar's time zone (`now` must be time zone aware)."""
        if now.tzinfo is None or now.utcoffset() is None:
            raise ValueError("now must be a time zone aware datetime")
        return now.astimezone(self.timezone).date()

    def public_holidays(self, year: int) -> frozenset[date]:
        """The public holidays of the country and subdivision in `year` (none without a country)."""
        import holidays  # noqa: PLC0415 - 3 MiB, loaded when a calendar is configured
        with self._lock:
            cached = self._public.get(year)
            if cached is None:
                cached = frozenset()
                if self.country is not None:
                    entity = holidays.country_holidays(self.country, subdiv=self.subdivision, years=year)
                    cached = frozenset(day for day in entity if day.year == year)
                self._public[year] = cached
            return cached

    def is_holiday(self, day: date) -> bool:
        return day in self.extra_holidays or day in self.public_holidays(day.year)

    def is_business_day(self, day: date) -> bool:
        return day.weekday() in self.workdays and not self.is_holiday(day)

    def business_days_of_month(self, year: int, month: int) -> list[date]:
        """The month's business days, in order."""
        return [day for day in _days_of_month(year, month) if self.is_business_day(day)]

    def business_days_after(self, day: date, until: date) -> int:
        """How many business days lie after `day` up to and including `until` (0 if `until` <= `day`)."""
        count = 0
        current = day + timedelta(days=1)
        while current <= until:
            if self.is_business_day(current):
                count += 1
            current += timedelta(days=1)
        return count


def add_months(year: int, month: int, months: int) -> tuple[int, int]:
    """(year, month) moved by `months` (which may be negative)."""
    index = year * 12 + (month - 1) + months
    return index // 12, index % 12 + 1


def _days_of_month(year: int, month: int) -> Iterator[date]:
    day = date(year, month, 1)
    while day.month == month:
        yield day
        day += timedelta(days=1)
