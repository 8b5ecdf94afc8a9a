"""Every recorded signal, in the order alert_rules/recording.rules.yml lists them."""

from __future__ import annotations

from exporter.signals import capacity, database, governance, month_end, transactions
from exporter.signals.signal import Signal


def recorded_signals(calendar_selector: str, days_before_close: int) -> tuple[Signal, ...]:
    """The signals the recording rules compute (the month-end window depends on the site's calendar)."""
    return (
        transactions.LATENCY_P50,
        transactions.LATENCY_P95,
        transactions.RUNS_RATE,
        transactions.FAILURE_RATIO,
        database.CONNECTIONS_USED,
        database.SIZE_GROWTH,
        month_end.USERS_PEAK_1H,
        month_end.DOCUMENTS_PER_HOUR,
        month_end.POSTING_BACKLOG,
        month_end.POSTING_BACKLOG_GROWTH_1H,
        capacity.CPU_BUSY,
        capacity.MEMORY_AVAILABLE,
        capacity.FILESYSTEM_AVAILABLE,
        capacity.DISK_BUSY,
        month_end.window_active(calendar_selector, days_before_close),
        governance.VIOLATIONS_BY_OWNER,
        governance.BREACHING_BY_OWNER,
    )
