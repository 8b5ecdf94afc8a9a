"""The month-end close: whether a close is on or near, the users it brings and the documents it moves."""

from __future__ import annotations

from exporter.signals.signal import FLEET_LABELS, Signal

WINDOW_RECORD = "erp:month_end_window:active"

USERS_PEAK_1H = Signal(
    "erp:users_logged_in:max_over_1h", "max_over_time(erp_users_logged_in[1h])", alert="ErpMonthEndUsersTrend"
)

#: business documents that reached each event in the last hour (created, confirmed, posted, done), per
#: document type: the throughput the month-end board compares with the previous closes
DOCUMENTS_PER_HOUR = Signal(
    "erp:business_documents:increase1h", "increase(erp_business_documents_total[1h])"
)
#: documents waiting to be posted, all types together, and how much that grew over the last hour
POSTING_BACKLOG = Signal(
    "erp:documents_unposted:sum", "sum without (document) (erp_documents_unposted)", alert="ErpMonthEndPostingBacklog"
)
POSTING_BACKLOG_GROWTH_1H = Signal(
    "erp:documents_unposted:delta1h", "sum without (document) (delta(erp_documents_unposted[1h]))"
)


def window_active(calendar_selector: str, days_before_close: int) -> Signal:
    """1 while a closing period is on, or at most `days_before_close` workdays before one; else 0, per landscape
    (each exporter publishes its own landscape's calendar).

    `calendar_selector` picks the business calendar (`{calendar="finance"}`, or '' for any).
    """
    return Signal(
        WINDOW_RECORD,
        f"max by ({FLEET_LABELS}) (\n"
        f"  erp_calendar_month_end_close{calendar_selector}\n"
        "  or\n"
        f"  (min by ({FLEET_LABELS}) (erp_calendar_workdays_to_close{calendar_selector}) <= bool {days_before_close})\n"
        ")\n",
    )
