"""The business calendar: business days, public holidays and closing periods, as pure functions of `now`.

`days` knows which dates are worked (workdays, public holidays from the `holidays` package, extra
holidays, the time zone); `periods` knows the closing periods (month end, fiscal year end, explicit dates)
and what they say at an instant. The check in `exporter.checks.calendar` turns that into metrics.
"""

from exporter.calendar.days import WEEKDAY_NAMES, BusinessCalendar, check_country, check_subdivision, zone
from exporter.calendar.periods import (
    CalendarState,
    ClosingPeriod,
    DateWindow,
    ExplicitDates,
    FiscalYearEnd,
    MonthEnd,
    PeriodState,
    evaluate,
)

__all__ = [
    "WEEKDAY_NAMES",
    "BusinessCalendar",
    "CalendarState",
    "ClosingPeriod",
    "DateWindow",
    "ExplicitDates",
    "FiscalYearEnd",
    "MonthEnd",
    "PeriodState",
    "check_country",
    "check_subdivision",
    "evaluate",
    "zone",
]
