"""The calendar check: is today a business day, a holiday, inside a closing period, and how long until one.

It reads no database and no operating system: only the clock, which is injected (`clock`, seconds since
the Unix epoch, `time.time` by default) so tests can put the check at any instant. The counting rules
(what "today" is, when a period is on, how business days to the close are counted) are those of
`exporter.calendar`:

* today is the date of the instant in the calendar's time zone;
* `erp_calendar_business_day` is 1 when today's weekday is a workday and today is no public or extra
  holiday; `erp_calendar_holiday` is 1 when today is a public or extra holiday, whatever its weekday;
* `erp_calendar_closing_period{period}` is 1 on every date from the first to the last day of one of the
  period's windows, weekends and holidays inside the window included;
* `erp_calendar_workdays_to_close{period}` is 0 while the period is on, else the business days after
  today up to and including the day its next window starts (today never counts; at least 1); absent when
  no window lies ahead;
* `erp_calendar_month_end_close` is 1 while any of the calendar's closing periods is on.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import ClassVar

from exporter.calendar import (
    BusinessCalendar,
    CalendarState,
    ClosingPeriod,
    DateWindow,
    ExplicitDates,
    FiscalYearEnd,
    MonthEnd,
    evaluate,
    zone,
)
from exporter.calendar.days import WEEKDAY_NAMES
from exporter.checks.base import BaseCheck, RunContext
from exporter.checks.registry import CheckKind, ScheduledCheck
from exporter.config.loader import LoadedConfig
from exporter.config.model import CalendarConfig, DatesPeriodConfig, FiscalYearEndPeriodConfig, MonthEndPeriodConfig
from exporter.config.schedule import check_schedule
from exporter.metrics import MetricFamily, MetricSpec, gauge

CLOSING_PERIOD = gauge(
    "erp_calendar_closing_period",
    "1 while the closing period is on (every day from its window's first to its last day, in the "
    "calendar's time zone), else 0.",
    "calendar",
    "period",
)
BUSINESS_DAYS_TO_CLOSE = gauge(
    "erp_calendar_workdays_to_close",
    "Business days after today up to and including the day the closing period next starts; 0 while it "
    "is on. Absent when no window of the period lies ahead.",
    "calendar",
    "period",
)
BUSINESS_DAY = gauge(
    "erp_calendar_business_day",
    "1 when today (in the calendar's time zone) is a workday and no holiday, else 0.",
    "calendar",
)
HOLIDAY = gauge(
    "erp_calendar_holiday",
    "1 when today (in the calendar's time zone) is a public holiday of the calendar's country and "
    "subdivision or one of its extra holidays, else 0.",
    "calendar",
)
MONTH_END_CLOSE = gauge(
    "erp_calendar_month_end_close",
    "1 while any closing period of the calendar is on, else 0.",
    "calendar",
)


def calendar_to_families(calendar: str, state: CalendarState) -> list[MetricFamily]:
    """Turn a calendar's state at one instant into metric families."""
    closing = CLOSING_PERIOD.family()
    to_close = BUSINESS_DAYS_TO_CLOSE.family()
    for period in state.periods:
        closing.add(1 if period.active else 0, calendar=calendar, period=period.name)
        if period.business_days_to_close is not None:
            to_close.add(period.business_days_to_close, calendar=calendar, period=period.name)
    return [
        closing,
        to_close,
        BUSINESS_DAY.family().add(1 if state.business_day else 0, calendar=calendar),
        HOLIDAY.family().add(1 if state.holiday else 0, calendar=calendar),
        MONTH_END_CLOSE.family().add(1 if state.closing else 0, calendar=calendar),
    ]


class CalendarCheck(BaseCheck):
    """Publishes one calendar's business day, holiday and closing period state at the clock's instant."""

    kind: ClassVar[str] = "calendar"
    metrics: ClassVar[tuple[MetricSpec, ...]] = (
        CLOSING_PERIOD,
        BUSINESS_DAYS_TO_CLOSE,
        BUSINESS_DAY,
        HOLIDAY,
        MONTH_END_CLOSE,
    )

    def __init__(
        self,
        name: str,
        calendar: BusinessCalendar,
        periods: Sequence[ClosingPeriod],
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(name)
        self._calendar = calendar
        self._periods = tuple(periods)
        self._clock = clock

    @classmethod
    def from_config(cls, config: CalendarConfig, clock: Callable[[], float] = time.time) -> CalendarCheck:
        calendar = BusinessCalendar(
            zone(config.timezone),
            workdays=(WEEKDAY_NAMES.index(day) for day in config.workdays),
            country=config.country,
            subdivision=config.subdivision,
            extra_holidays=config.extra_holidays,
        )
        return cls(config.name, calendar, [closing_period(p) for p in config.closing_periods], clock)

    def state(self) -> CalendarState:
        """The calendar's state at the clock's current instant."""
        return evaluate(self._calendar, self._periods, datetime.fromtimestamp(self._clock(), tz=UTC))

    def run(self, ctx: RunContext) -> list[MetricFamily]:
        return calendar_to_families(self.name, self.state())


def closing_period(
    config: MonthEndPeriodConfig | FiscalYearEndPeriodConfig | DatesPeriodConfig,
) -> ClosingPeriod:
    """The closing period a config entry describes."""
    if isinstance(config, MonthEndPeriodConfig):
        return MonthEnd(config.name, config.last_business_days, config.first_business_days)
    if isinstance(config, FiscalYearEndPeriodConfig):
        return FiscalYearEnd(
            config.name, config.fiscal_year_end_month, config.last_business_days, config.first_business_days
        )
    windows = tuple(DateWindow(r.start, r.end or r.start) for r in config.dates)
    return ExplicitDates(config.name, windows)


def build_calendar_checks(loaded: LoadedConfig) -> list[ScheduledCheck]:
    """One check per business calendar (`calendar:<name>`)."""
    settings = loaded.config.global_
    checks: list[ScheduledCheck] = []
    for calendar in loaded.config.calendars:
        schedule = check_schedule(
            calendar.interval, calendar.timeout, default_interval=calendar.interval, default_timeout=settings.timeout
        )
        checks.append(
            ScheduledCheck(
                f"calendar:{calendar.name}", CalendarCheck.from_config(calendar), schedule.interval, schedule.timeout
            )
        )
    return checks


def check_kind() -> CheckKind:
    """`calendar`: one check per entry of `calendars`."""
    return CheckKind("calendar", CalendarCheck.metrics, build_for_exporter=build_calendar_checks)
