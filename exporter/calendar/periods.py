"""Closing periods and their state at an instant: the pure logic behind the erp_calendar_* metrics.

Every rule works on calendar dates in the calendar's time zone (see `BusinessCalendar.today`).

Windows
    A closing period is a series of *windows*, each a range of dates from `start` to `end`, both
    included. A period is **active** on every date of one of its windows, from 00:00 on `start` to
    24:00 on `end` local time, including the weekends and holidays that fall inside the window (the
    close is in progress over a weekend between its last and first business days).

`month_end` (last N business days of a month, first M business days of the next)
    Each month has one window: it starts on the N-th last business day of the month and ends on the
    M-th business day of the next month. N = 0 starts it on the next month's first business day,
    M = 0 ends it on the month's last business day. Weekends and holidays are skipped when counting,
    so a holiday inside the window pushes its start earlier (or its end later) by one business day.
    A month with fewer than N (or M) business days contributes all it has.

`fiscal_year_end`
    The same window, for the month in which the fiscal year ends only (`fiscal_year_end_month`, 12 for
    a calendar year: the last N business days of December and the first M of January).

`dates`
    The explicit windows given, as they are (their start need not be a business day).

Business days to the close
    0 while the period is active. Otherwise the number of business days after today up to and
    including the start of the period's next window; today itself never counts. So on a Wednesday
    before a window that starts on Friday it is 2 (Thursday, Friday), on a Friday or a Saturday before
    a window that starts on Monday it is 1. A window of explicit dates can start on a day that is not a
    business day; the value is then at least 1, so that 0 always means "active". A period with no
    window after today (explicit dates that are all past) has no value.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

from exporter.calendar.days import BusinessCalendar, add_months


@dataclass(frozen=True)
class DateWindow:
    """Dates from `start` to `end`, both included."""

    start: date
    end: date

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ValueError(f"window ends ({self.end}) before it starts ({self.start})")

    def __contains__(self, day: object) -> bool:
        return isinstance(day, date) and self.start <= day <= self.end


def month_close_window(
    calendar: BusinessCalendar, year: int, month: int, last_business_days: int, first_business_days: int
) -> DateWindow | None:
    """The window around the end of `month`: its last N business days and the first M of the next month.

    None when neither month has a business day to give (N and M both 0, or workdays all holidays).
    """
    this_month = calendar.business_days_of_month(year, month)
    next_month = calendar.business_days_of_month(*add_months(year, month, 1))
    days = this_month[max(len(this_month) - last_business_days, 0) :] if last_business_days > 0 else []
    days += next_month[:first_business_days]
    if not days:
        return None
    return DateWindow(days[0], days[-1])


@dataclass(frozen=True)
class MonthEnd:
    """The last `last_business_days` of every month and the first `first_business_days` of the next."""

    name: str
    last_business_days: int = 3
    first_business_days: int = 2

    def windows_near(self, calendar: BusinessCalendar, today: date) -> list[DateWindow]:
        """The windows that can contain `today` (last month's and this month's) and the next one after it."""
        found = []
        for offset in (-1, 0, 1):
            year, month = add_months(today.year, today.month, offset)
            window = month_close_window(calendar, year, month, self.last_business_days, self.first_business_days)
            if window is not None:
                found.append(window)
        return found


@dataclass(frozen=True)
class FiscalYearEnd:
    """The last business days of the month the fiscal year ends in and the first of the next month."""

    name: str
    fiscal_year_end_month: int = 12
    last_business_days: int = 3
    first_business_days: int = 2

    def __post_init__(self) -> None:
        if not 1 <= self.fiscal_year_end_month <= 12:
            raise ValueError(f"fiscal_year_end_month must be 1 to 12, got {self.fiscal_year_end_month}")

    def windows_near(self, calendar: BusinessCalendar, today: date) -> list[DateWindow]:
        """Last year's, this year's and next year's window: they include any containing `today` and the next."""
        found = []
        for year in (today.year - 1, today.year, today.year + 1):
            window = month_close_window(
                calendar, year, self.fiscal_year_end_month, self.last_business_days, self.first_business_days
            )
            if window is not None:
                found.append(window)
        return found


@dataclass(frozen=True)
class ExplicitDates:
    """Windows written out date by date."""

    name: str
    windows: tuple[DateWindow, ...]

    def windows_near(self, calendar: BusinessCalendar, today: date) -> list[DateWindow]:
        return list(self.windows)


ClosingPeriod = MonthEnd | FiscalYearEnd | ExplicitDates


@dataclass(frozen=True)
class PeriodState:
    """One closing period at one instant."""

    name: str
    active: bool
    business_days_to_close: int | None  # 0 while active; None when no window lies ahead
    current: DateWindow | None  # the window `today` is in, if any
    upcoming: DateWindow | None  # the first window that starts after today, if any


@dataclass(frozen=True)
class CalendarState:
    """Everything the calendar says about one instant."""

    today: date
    business_day: bool
    holiday: bool
    periods: tuple[PeriodState, ...]

    @property
    def closing(self) -> bool:
        """Whether any closing period is active."""
        return any(period.active for period in self.periods)


def period_state(calendar: BusinessCalendar, period: ClosingPeriod, today: date) -> PeriodState:
    windows = period.windows_near(calendar, today)
    current = next((window for window in windows if today in window), None)
    upcoming = min((window for window in windows if window.start > today), key=lambda w: w.start, default=None)
    if current is not None:
        days: int | None = 0
    elif upcoming is not None:
        days = max(calendar.business_days_after(today, upcoming.start), 1)
    else:
        days = None
    return PeriodState(period.name, current is not None, days, current, upcoming)


def evaluate(calendar: BusinessCalendar, periods: Sequence[ClosingPeriod], now: datetime) -> CalendarState:
    """The state of `calendar` and its closing periods at the instant `now` (a time zone aware datetime)."""
    today = calendar.today(now)
    return CalendarState(
        today=today,
        business_day=calendar.is_business_day(today),
        holiday=calendar.is_holiday(today),
        periods=tuple(period_state(calendar, period, today) for period in periods),
    )
