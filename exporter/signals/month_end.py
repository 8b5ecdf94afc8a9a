"""The month-end close: whether a close is on or near, and the users it brings."""

from __future__ import annotations

from exporter.signals.signal import Signal

WINDOW_RECORD = "erp:month_end_window:active"

USERS_PEAK_1H = Signal(
    "erp:users_logged_in:max_over_1h", "max_over_time(erp_users_logged_in[1h])", alert="ErpMonthEndUsersTrend"
)


def window_active(calendar_selector: str, days_before_close: int) -> Signal:
    """1 while a closing period is on, or at most `days_before_close` workdays before one; else 0.

    `calendar_selector` picks the business calendar (`{calendar="finance"}`, or '' for any).
    """
    return Signal(
        WINDOW_RECORD,
        "max(\n"
        f"  erp_calendar_month_end_close{calendar_selector}\n"
        "  or\n"
        f"  (min(erp_calendar_workdays_to_close{calendar_selector}) <= bool {days_before_close})\n"
        ")\n",
    )
