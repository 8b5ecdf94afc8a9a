"""92 days of ERP history with known answers, written as OpenMetrics for `promtool tsdb create-blocks-from
openmetrics` (the real backfill path), for the report tests.

The history runs from 2026-08-01 to 2026-11-01 (UTC) at a 5-minute resolution for one landscape (target
`erp-prod`, exporter instance `erp-host:9861`). What the reports must find in it:

* three month-end closes, from the calendar series: 29 Aug - 1 Sep, 28 Sep - 1 Oct, 29 Oct - 1 Nov, each with a
  known peak of logged-in users (60, 75, 90; never above 40 outside a close), ERP sessions (users + 10),
  connections used, database round trip, transaction p95, CPU, the lowest memory available, and transaction
  failures (3, 5, 8 in the close, none outside);
* the database growing by exactly 50 MiB a day from 10 GiB, on a filesystem whose free space shrinks by exactly
  1 GiB a day from 100 GiB (92 GiB used by the end: 8 days left, 163.84 days for the database growth);
* a second filesystem that appears 10 minutes before the end (too little history for any forecast);
* two audits: `sales_missing_tax` (owner sales) at 0 until 1 Oct and 12 after it (warning over 5, critical
  over 20: a month over its warning threshold); `supplier_no_iban` (owner finance) falling linearly from 30 to 0
  (warning over 10, critical over 25);
* ALERTS: a Watchdog that always fires, and ErpHostCpuHigh firing during the October close only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

STEP = 300
START = datetime(2026, 8, 1, tzinfo=UTC).timestamp()
END = datetime(2026, 11, 1, tzinfo=UTC).timestamp()
DAY = 86400.0
GIB = 1024.0**3
MIB = 1024.0**2

TARGET = {"job": "erp-exporter", "instance": "erp-host:9861", "target": "erp-prod", "environment": "prod"}
HOST = {"job": "erp-exporter", "instance": "erp-host:9861"}


@dataclass(frozen=True)
class Close:
    month: str
    start: float
    end: float
    users: int
    connections: float
    round_trip: float
    p95: float
    cpu: float
    memory_low: float
    failures: int

    @property
    def middle(self) -> float:
        return (self.start + self.end) / 2


def _at(year: int, month: int, day: int) -> float:
    return datetime(year, month, day, tzinfo=UTC).timestamp()


CLOSES = (
    Close("2026-08", _at(2026, 8, 29), _at(2026, 9, 1), 60, 0.50, 0.050, 1.0, 0.60, 0.40, 3),
    Close("2026-09", _at(2026, 9, 28), _at(2026, 10, 1), 75, 0.60, 0.080, 1.5, 0.70, 0.30, 5),
    Close("2026-10", _at(2026, 10, 29), _at(2026, 11, 1), 90, 0.70, 0.120, 2.0, 0.80, 0.20, 8),
)
USERS_OUTSIDE_PEAK = 40
DB_SIZE_START = 10 * GIB
DB_GROWTH_PER_DAY = 50 * MIB
FS_SIZE = 200 * GIB
FS_FREE_START = 100 * GIB
FS_SHRINK_PER_DAY = 1 * GIB
DB_MOUNT = "/var/lib/postgresql"
NEW_MOUNT = "/srv/new"
NEW_MOUNT_SINCE = END - 600
AUDITS = {  # audit: (owner, warning, critical)
    "sales_missing_tax": ("sales", 5, 20),
    "supplier_no_iban": ("finance", 10, 25),
}
SALES_TAX_FROM = _at(2026, 10, 1)
SALES_TAX_VIOLATIONS = 12
IBAN_START = 30.0


def times(first: float = START, last: float = END) -> Iterator[float]:
    """The sample times from `first` up to `last`, both included, on the history's 5-minute grid."""
    moment = START + max(0.0, -(-(first - START) // STEP)) * STEP
    while moment <= min(last, END):
        yield moment
        moment += STEP


def close_at(moment: float) -> Close | None:
    return next((close for close in CLOSES if close.start <= moment < close.end), None)


def _peak(moment: float, close: Close | None, peak: float, base: float) -> float:
    """`peak` at the close's middle sample, a value between base and the peak elsewhere in it, base outside."""
    if close is None:
        return base
    if abs(moment - close.middle) < STEP / 2:
        return peak
    return base + (peak - base) / 2


def users(moment: float) -> float:
    close = close_at(moment)
    if close is None:
        hour = datetime.fromtimestamp(moment, UTC).hour
        return USERS_OUTSIDE_PEAK if hour == 10 else 15.0
    return _peak(moment, close, close.users, 30)


def failures(moment: float) -> float:
    """The counter: each close's failures land in its middle hour."""
    total = 0
    for close in CLOSES:
        if moment >= close.middle:
            total += close.failures
    return float(total)


def audit_violations(audit: str, moment: float) -> float:
    if audit == "sales_missing_tax":
        return float(SALES_TAX_VIOLATIONS if moment >= SALES_TAX_FROM else 0)
    return IBAN_START * (1 - (moment - START) / (END - START))


def _labels(labels: dict[str, str]) -> str:
    return "{" + ",".join(f'{name}="{value}"' for name, value in sorted(labels.items())) + "}"


Value = Callable[[float], float | None]


def _family(
    name: str, kind: str, series: list[tuple[str, dict[str, str], Value]], first: float, last: float
) -> Iterator[str]:
    yield f"# TYPE {name} {kind}"
    for sample_name, labels, value in series:
        text = _labels(labels)
        for moment in times(first, last):
            found = value(moment)
            if found is not None:
                yield f"{sample_name}{text} {found:.10g} {moment:.0f}"


def openmetrics(first: float = START, last: float = END) -> Iterator[str]:
    """The history from `first` to `last` (both included), family by family, ending with # EOF."""
    def close_value(attribute: str, base: float) -> Value:
        def value(moment: float) -> float:
            close = close_at(moment)
            return _peak(moment, close, getattr(close, attribute), base) if close else base
        return value

    fs_db = {**HOST, "mountpoint": DB_MOUNT, "fstype": "ext4", "device": "/dev/sdb1"}
    fs_new = {**HOST, "mountpoint": NEW_MOUNT, "fstype": "ext4", "device": "/dev/sdc1"}
    families: list[tuple[str, str, list[tuple[str, dict[str, str], Value]]]] = [
        ("erp_exporter_build_info", "gauge", [("erp_exporter_build_info", {**HOST, "version": "test"}, lambda t: 1)]),
        ("erp_check_success", "gauge", [("erp_check_success", {**TARGET, "check": "db_response"}, lambda t: 1)]),
        ("erp_up", "gauge", [("erp_up", TARGET, lambda t: 1)]),
        ("erp_calendar_month_end_close", "gauge", [
            ("erp_calendar_month_end_close", {**HOST, "calendar": "finance"},
             lambda t: 1 if close_at(t) else 0)]),
        ("erp_users_logged_in", "gauge", [("erp_users_logged_in", TARGET, users)]),
        ("erp_sessions_active", "gauge", [("erp_sessions_active", TARGET, lambda t: users(t) + 10)]),
        ("erp_database_connections_used_ratio", "gauge", [
            ("erp_database_connections_used_ratio", TARGET, close_value("connections", 0.2))]),
        ("erp:database_connections_used:ratio", "gauge", [
            ("erp:database_connections_used:ratio", TARGET, close_value("connections", 0.2))]),
        ("erp_database_probe_duration_seconds", "gauge", [
            ("erp_database_probe_duration_seconds", TARGET, close_value("round_trip", 0.005))]),
        ("erp:transaction_duration_seconds:p95", "gauge", [
            ("erp:transaction_duration_seconds:p95", {**TARGET, "transaction": "sales_order"},
             close_value("p95", 0.5))]),
        ("erp_transaction_failures", "counter", [
            ("erp_transaction_failures_total", {**TARGET, "transaction": "sales_order", "reason": "error"},
             failures)]),
        ("erp:host_cpu_busy:ratio_rate5m", "gauge", [
            ("erp:host_cpu_busy:ratio_rate5m", HOST, close_value("cpu", 0.2))]),
        ("erp:host_memory_available:ratio", "gauge", [
            ("erp:host_memory_available:ratio", HOST,
             lambda t: (0.6 - (0.6 - close.memory_low) * (1 if abs(t - close.middle) < STEP / 2 else 0.5))
             if (close := close_at(t)) else 0.6)]),
        ("erp_database_size_bytes", "gauge", [
            ("erp_database_size_bytes", TARGET, lambda t: DB_SIZE_START + DB_GROWTH_PER_DAY * (t - START) / DAY)]),
        ("erp_host_filesystem_avail_bytes", "gauge", [
            ("erp_host_filesystem_avail_bytes", fs_db, lambda t: FS_FREE_START - FS_SHRINK_PER_DAY * (t - START) / DAY),
            ("erp_host_filesystem_avail_bytes", fs_new,
             lambda t: 50 * GIB - (t - NEW_MOUNT_SINCE) * 1024 if t >= NEW_MOUNT_SINCE else None)]),
        ("erp_host_filesystem_size_bytes", "gauge", [
            ("erp_host_filesystem_size_bytes", fs_db, lambda t: FS_SIZE),
            ("erp_host_filesystem_size_bytes", fs_new, lambda t: 100 * GIB if t >= NEW_MOUNT_SINCE else None)]),
        ("erp:host_filesystem_avail:ratio", "gauge", [
            ("erp:host_filesystem_avail:ratio", fs_db,
             lambda t: (FS_FREE_START - FS_SHRINK_PER_DAY * (t - START) / DAY) / FS_SIZE)]),
        ("erp_audit_violations", "gauge", [
            ("erp_audit_violations", {**TARGET, "audit": audit, "owner": owner, "category": "data_quality"},
             lambda t, audit=audit: audit_violations(audit, t))
            for audit, (owner, _, _) in AUDITS.items()]),
        ("erp_audit_warning_threshold", "gauge", [
            ("erp_audit_warning_threshold", {**TARGET, "audit": audit, "owner": owner},
             lambda t, warning=warning: float(warning))
            for audit, (owner, warning, _) in AUDITS.items()]),
        ("erp_audit_critical_threshold", "gauge", [
            ("erp_audit_critical_threshold", {**TARGET, "audit": audit, "owner": owner},
             lambda t, critical=critical: float(critical))
            for audit, (owner, _, critical) in AUDITS.items()]),
        ("ALERTS", "gauge", [
            ("ALERTS", {"alertname": "Watchdog", "alertstate": "firing", "severity": "none"}, lambda t: 1),
            ("ALERTS", {**HOST, "alertname": "ErpHostCpuHigh", "alertstate": "firing", "severity": "warning"},
             lambda t: 1 if (close := close_at(t)) and close.month == "2026-10" else None)]),
    ]
    for name, kind, series in families:
        yield from _family(name, kind, series, first, last)
    yield "# EOF"


def write(path: Path, first: float = START, last: float = END) -> int:
    """Write the history from `first` to `last` to `path`; the number of samples."""
    count = 0
    with path.open("w") as out:
        for line in openmetrics(first, last):
            out.write(line + "\n")
            count += not line.startswith("#")
    return count


def write_days(directory: Path) -> tuple[list[Path], int]:
    """The history as one OpenMetrics file per day (and the number of samples in all of them).

    promtool 2.42 cuts its input into 2-hour blocks and reads the whole file again for every block, so one file
    of 92 days takes minutes (1,105 blocks x 636,798 samples); a day per file reads each sample 12 times.
    """
    paths: list[Path] = []
    count = 0
    day = START
    while day <= END:
        path = directory / f"history-{datetime.fromtimestamp(day, UTC):%Y-%m-%d}.om"
        count += write(path, day, day + DAY - 1)
        paths.append(path)
        day += DAY
    return paths, count
