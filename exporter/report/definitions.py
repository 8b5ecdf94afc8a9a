"""The capacity and health reports as data: sections of rows, each row one PromQL expression and a unit.

A row's expression is a template evaluated as one instant query at the end of the report's range:

- ``$range``  the report's range (``30d``), for ``*_over_time``, ``deriv`` and ``increase``;
- ``$step``   the resolution of subqueries (the range / 10000, at least 1s);
- ``$sel``    the label matchers of ``--site`` / ``--environment`` / ``--target`` (``environment="prod",``), written
  last inside a selector's braces (``erp_up{$sel}``, ``erp_x{step="",$sel}``: PromQL allows the trailing comma);
- ``$targets`` for rows about exporter instances (hosts, backups): `` and on (site, landscape, job, instance) ...``
  keeping only the instances that watch a selected target (empty without filters);
- ``$step_seconds`` the same step as a number, to turn a count of subquery steps into time;
- ``$history_step`` the coarser step (the range / 200) a forecast's history is measured on;
- ``$fs``, ``$dbmounts`` and ``$calendar``: the filesystem and calendar selectors of alert_rules/thresholds.yml.

A row with a ``trend`` is a forecast: ``trend`` is the raw series the trend stands on, and the engine asks how
much history of it the range holds (exporter/report/forecast.py) before it prints a number.

Charts (HTML, and PNG beside Markdown) are range queries over the report's range with the same variables
(``$range`` excepted), drawn with the row's limits and, when ``forecast`` is set, each series' trend ahead.

The expression keeps exactly the section's subject label (``target`` or ``instance``) and the row's detail
labels (``transaction``, ``mountpoint``...). It uses the recording rules of alert_rules/recording.rules.yml
where they exist; ``fallback`` is the same measure from the raw series, asked only when the recording rule
returned nothing (a Prometheus that does not load the shipped rules). A subject the query returns nothing for
shows "no data", never 0: rows whose empty answer means zero (failing checks, audits over threshold) say so
in PromQL with ``or on (...) (count ... * 0)``, so that a target without the metric still shows "no data".

Limits mark a value ``warning`` / ``critical`` with the thresholds of the alert of the same measure.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from exporter.signals.capacity import CPU_BUSY, FILESYSTEM_AVAILABLE, MEMORY_AVAILABLE
from exporter.signals.database import CONNECTIONS_USED
from exporter.signals.governance import BREACHING_BY_OWNER
from exporter.signals.slo import BUDGET_REMAINING
from exporter.signals.transactions import LATENCY_P95

#: "level" is 0 ok, 1 warning, 2 critical (an audit against its own published thresholds)
Unit = Literal["bytes", "bytes_per_day", "seconds", "ratio", "count", "count_per_day", "days", "bool", "level"]


@dataclass(frozen=True)
class Limit:
    """Where a value turns warning / critical: the named alert's keys in thresholds.yml, or fixed values.

    ``below``: the value is bad when it is under the limit (free space, days left); otherwise over it. The
    alert's value is multiplied by ``scale`` (thresholds.yml says hours where the row shows seconds).
    """

    alert: str = ""
    warning_key: str | None = "warning"
    critical_key: str | None = "critical"
    below: bool = False
    scale: float = 1.0
    warning: float | None = None
    critical: float | None = None


@dataclass(frozen=True)
class Row:
    key: str
    title: str
    expr: str
    unit: Unit
    detail: tuple[str, ...] = ()
    fallback: str = ""
    limit: Limit | None = None
    help: str = ""
    trend: str = ""  # the raw series (a selector template) a forecast stands on; "" for a plain measure


@dataclass(frozen=True)
class Chart:
    """A chart of a report: one range query over the range, one line per series (named by ``legend``)."""

    key: str
    title: str
    expr: str
    unit: Unit
    legend: tuple[str, ...]
    limit: Limit | None = None
    forecast: bool = False  # draw each series' least-squares trend ahead (when its history is enough)
    fallback: str = ""
    help: str = ""


@dataclass(frozen=True)
class Section:
    key: str
    title: str
    subject: str  # the label that names what a row is about ("target", "instance"); "" for one subject
    subjects: str  # PromQL listing the subjects that must appear even without data ("" for none)
    rows: tuple[Row, ...]


@dataclass(frozen=True)
class Report:
    key: str
    title: str
    sections: tuple[Section, ...]
    charts: tuple[Chart, ...] = ()


# -- thresholds -------------------------------------------------------------------------------------------------

# alert_rules/thresholds.yml, the one place of the alert thresholds, as tools/gen_alert_rules.py copies it
# into the package (a test fails when the copy differs); --thresholds.file reads a site's own file instead.
PACKAGED_THRESHOLDS = Path(__file__).with_name("thresholds.yml")
REQUIRED_KEYS: dict[str, tuple[str, ...]] = {
    "selectors": ("filesystem", "database_mountpoints", "calendar"),
    "alerts": (
        "ErpMonthEndUsersTrend", "ErpDatabaseConnectionsSaturated", "ErpTransactionLatencyHigh",
        "ErpDatabaseGrowthFillsDisk", "ErpHostCpuHigh", "ErpHostMemoryPressure", "ErpHostDiskSpaceLow",
        "ErpDatabaseLongRunningQueries", "ErpDatabaseBlockedSessions", "ErpDatabaseInvalidIndexes",
        "ErpBackupStale",
    ),
}


def _packaged_thresholds() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(PACKAGED_THRESHOLDS.read_text())
    return loaded


@dataclass(frozen=True)
class Thresholds:
    """The selectors and alert values the reports use (a subset of thresholds.yml)."""

    raw: dict[str, Any] = field(default_factory=_packaged_thresholds)

    @classmethod
    def load(cls, path: Path) -> Thresholds:
        """Read a thresholds.yml; raise ValueError naming the file and the key that is missing."""
        try:
            loaded = yaml.safe_load(path.read_text())
        except (OSError, yaml.YAMLError) as exc:
            raise ValueError(f"{path}: {exc}") from None
        if not isinstance(loaded, dict):
            raise ValueError(f"{path}: not a thresholds file (a mapping with selectors and alerts)")
        for section, keys in REQUIRED_KEYS.items():
            for key in keys:
                if not isinstance(loaded.get(section), dict) or key not in loaded[section]:
                    raise ValueError(f"{path}: {section}.{key} is missing")
        return cls(loaded)

    def selector(self, name: str) -> str:
        return str(self.raw["selectors"][name])

    def values(self, limit: Limit, labels: dict[str, str]) -> tuple[float | None, float | None]:
        """(warning, critical) of a limit for a series with these labels (per-label overrides applied)."""
        if not limit.alert:
            return limit.warning, limit.critical
        alert: dict[str, Any] = dict(self.raw["alerts"].get(limit.alert) or {})
        overrides = alert.get("overrides") or {}
        chosen = (overrides.get("values") or {}).get(labels.get(str(overrides.get("label", ""))))
        if isinstance(chosen, dict):
            alert.update(chosen)

        def pick(key: str | None) -> float | None:
            value = alert.get(key) if key else None
            return float(value) * limit.scale if isinstance(value, int | float) else None

        return pick(limit.warning_key), pick(limit.critical_key)


# -- the reports ----------------------------------------------------------------------------------------------

# 0 (rather than "no data") when Prometheus evaluated alerting rules over the range (any ALERTS series, such
# as the Watchdog that always fires) but none of the selected ones fired.
_NO_ALERTS = "or on () (count(count_over_time(ALERTS[$range])) * 0)"
_TARGETS = 'group by (target) (last_over_time(erp_check_success{target!="",$sel}[$range]))'
_INSTANCES = "group by (instance) (last_over_time(erp_exporter_build_info[$range])$targets)"


def _failing(metric: str, bad: str, subject: str, scope: str) -> str:
    """Checks in a bad state now, by check; 0 for a subject whose checks are all fine; nothing without checks.

    Target checks are chosen by ``$sel``; the checks of an exporter instance (target="") by ``$targets``."""
    keep = "$targets" if subject == "instance" else ""
    return (
        f"count by ({subject}, check) ({metric}{{{scope}}} {bad}{keep})\n"
        f"or on ({subject}) (count by ({subject}) ({metric}{{{scope}}}{keep}) * 0)"
    )


# -- rows and queries more than one report asks -------------------------------------------------------------------

CONNECTIONS_PEAK = Row(
    "connections_peak",
    "Peak database connections used",
    f"max by (target) (max_over_time({CONNECTIONS_USED.selected('$sel')}[$range]))",
    "ratio",
    fallback="max by (target) (max_over_time(erp_database_connections_used_ratio{$sel}[$range]))",
    limit=Limit(CONNECTIONS_USED.alert),
    help="Highest share of the database's connection limit in use.",
)
LATENCY_P95_PEAK = Row(
    "latency_p95_peak",
    "Peak p95 latency",
    f"max by (target, transaction) (max_over_time({LATENCY_P95.selected('$sel')}[$range]))",
    "seconds",
    detail=("transaction",),
    fallback="histogram_quantile(0.95, sum by (target, transaction, le) "
    '(increase(erp_transaction_duration_seconds_bucket{step="",$sel}[$range])))',
    limit=Limit(LATENCY_P95.alert),
    help="Highest 5-minute p95 of each business transaction (without the recording rules: the p95 "
    "over the whole range).",
)
CPU_PEAK = Row(
    "cpu_peak",
    "Peak CPU busy (5m average)",
    f"max by (instance) (max_over_time({CPU_BUSY.record}[$range])$targets)",
    "ratio",
    fallback=f"max by (instance) (max_over_time(({CPU_BUSY.expr.strip()})[$range:$step])$targets)",
    limit=Limit(CPU_BUSY.alert),
)
MEMORY_AVAILABLE_LOW = Row(
    "memory_available_low",
    "Lowest memory available",
    f"min by (instance) (min_over_time({MEMORY_AVAILABLE.record}[$range])$targets)",
    "ratio",
    fallback=f"min by (instance) (min_over_time(({MEMORY_AVAILABLE.expr})[$range:$step])$targets)",
    limit=Limit(MEMORY_AVAILABLE.alert, below=True),
)
# a chart's p95 at each step from the raw histogram, when the recording rule has nothing
_P95_FROM_BUCKETS = ("histogram_quantile(0.95, sum by (target, transaction, le) "
                     '(rate(erp_transaction_duration_seconds_bucket{step="",$sel}[10m])))')

CAPACITY_CHARTS = (
    Chart("users", "Logged-in ERP users", "max by (target) (erp_users_logged_in{$sel})", "count", ("target",),
          limit=Limit("ErpMonthEndUsersTrend", critical_key=None), forecast=True,
          help="Distinct users logged in, against the users the system is sized for."),
    Chart("connections", "Database connections used", f"max by (target) ({CONNECTIONS_USED.selected('$sel')})",
          "ratio", ("target",), limit=Limit(CONNECTIONS_USED.alert), forecast=True,
          fallback="max by (target) (erp_database_connections_used_ratio{$sel})"),
    Chart("latency", "Business transaction p95", f"max by (target, transaction) ({LATENCY_P95.selected('$sel')})",
          "seconds", ("target", "transaction"), limit=Limit(LATENCY_P95.alert),
          fallback=_P95_FROM_BUCKETS),
    Chart("database_size", "Database size", "max by (target) (erp_database_size_bytes{$sel})", "bytes",
          ("target",), forecast=True),
    Chart("filesystem", "Filesystem free", f"min by (instance, mountpoint) ({FILESYSTEM_AVAILABLE.selected('$fs')}"
          "$targets)", "ratio", ("instance", "mountpoint"), limit=Limit(FILESYSTEM_AVAILABLE.alert, below=True),
          forecast=True, fallback="min by (instance, mountpoint) (erp_host_filesystem_avail_bytes{$fs} / "
          "erp_host_filesystem_size_bytes{$fs}$targets)"),
    Chart("cpu", "CPU busy (5m average)", f"max by (instance) ({CPU_BUSY.record}$targets)", "ratio", ("instance",),
          limit=Limit(CPU_BUSY.alert), fallback=f"max by (instance) ({CPU_BUSY.expr.strip()}$targets)"),
    Chart("memory", "Memory available", f"min by (instance) ({MEMORY_AVAILABLE.record}$targets)", "ratio",
          ("instance",), limit=Limit(MEMORY_AVAILABLE.alert, below=True),
          fallback=f"min by (instance) ({MEMORY_AVAILABLE.expr}$targets)"),
)

HEALTH_CHARTS = (
    Chart("up", "Targets up", "min by (target) (erp_up{$sel})", "bool", ("target",)),
    Chart("checks_failing", "Checks failing", 'count by (target) (erp_check_success{target!="",$sel} == 0)\n'
          'or on (target) (count by (target) (erp_check_success{target!="",$sel}) * 0)', "count", ("target",)),
    Chart("alerts", "Alerts firing", 'count by (severity) (ALERTS{alertstate="firing",$sel})', "count",
          ("severity",)),
    Chart("error_budget", "Error budget left", f"min by (transaction, slo) ({BUDGET_REMAINING}{{$sel}})", "ratio",
          ("transaction", "slo"), limit=Limit(warning=0.25, critical=0.0, below=True)),
)

CAPACITY = Report(
    key="capacity",
    title="ERP capacity report",
    sections=(
        Section(
            key="targets",
            title="Targets",
            subject="target",
            subjects=_TARGETS,
            rows=(
                Row(
                    "users_peak",
                    "Peak logged-in ERP users",
                    "max by (target) (max_over_time(erp_users_logged_in{$sel}[$range]))",
                    "count",
                    limit=Limit("ErpMonthEndUsersTrend", critical_key=None),
                    help="Most distinct users logged in at once (ERP pack); warning over the users the system is "
                    "sized for (ErpMonthEndUsersTrend).",
                ),
                Row(
                    "users_peak_closing",
                    "Peak users during closing periods",
                    "max by (target) (max_over_time((max_over_time(erp_users_logged_in{$sel}[$step])\n"
                    "  and on () (max(erp_calendar_month_end_close{$calendar}) == 1))[$range:$step]))",
                    "count",
                    help="The peak while a business calendar had a closing period on (erp_calendar_month_end_close).",
                ),
                Row(
                    "users_peak_outside",
                    "Peak users outside closing periods",
                    "max by (target) (max_over_time((max_over_time(erp_users_logged_in{$sel}[$step])\n"
                    "  and on () (max(erp_calendar_month_end_close{$calendar}) == 0))[$range:$step]))",
                    "count",
                    help="The peak while no closing period was on (no data without a business calendar).",
                ),
                CONNECTIONS_PEAK,
                Row(
                    "connections_days_left",
                    "Days until connections reach the limit",
                    "min by (target) (\n"
                    "  (1 - last_over_time(erp_database_connections_used_ratio{$sel}[$range]))\n"
                    "  / (deriv(erp_database_connections_used_ratio{$sel}[$range]) * 86400))",
                    "days",
                    help="At the linear trend of the connections used over the range ('never' when not rising).",
                    trend="erp_database_connections_used_ratio{$sel}",
                ),
                LATENCY_P95_PEAK,
                Row(
                    "database_size",
                    "Database size now",
                    "max by (target) (last_over_time(erp_database_size_bytes{$sel}[$range]))",
                    "bytes",
                ),
                Row(
                    "database_growth",
                    "Database growth per day",
                    "max by (target) (deriv(erp_database_size_bytes{$sel}[$range]) * 86400)",
                    "bytes_per_day",
                    help="The linear trend of the database size over the range.",
                    trend="erp_database_size_bytes{$sel}",
                ),
                Row(
                    "database_disk_days_left",
                    "Days until the database fills its disk",
                    "min by (target) (\n"
                    "  min by (job, instance) (\n"
                    "    last_over_time(erp_host_filesystem_avail_bytes{$fs,$dbmounts}[$range]))\n"
                    "  / on (job, instance) group_right ()\n"
                    "  (deriv(erp_database_size_bytes{$sel}[$range]) * 86400))",
                    "days",
                    limit=Limit("ErpDatabaseGrowthFillsDisk", below=True),
                    help="Free space of the database filesystems of the exporter's host over the growth per day "
                    "(the exporter runs on the database host, as ErpDatabaseGrowthFillsDisk assumes).",
                    trend="erp_database_size_bytes{$sel}",
                ),
            ),
        ),
        Section(
            key="hosts",
            title="Hosts (exporter instances)",
            subject="instance",
            subjects=_INSTANCES,
            rows=(
                CPU_PEAK,
                Row(
                    "memory_used_peak",
                    "Peak memory used",
                    "max by (instance) (max_over_time(erp_host_memory_used_bytes[$range])$targets)",
                    "bytes",
                ),
                MEMORY_AVAILABLE_LOW,
                Row(
                    "filesystem_free",
                    "Filesystem free now",
                    f"min by (instance, mountpoint) ({FILESYSTEM_AVAILABLE.selected('$fs')}$targets)",
                    "ratio",
                    detail=("mountpoint",),
                    fallback="min by (instance, mountpoint) (erp_host_filesystem_avail_bytes{$fs} / "
                    "erp_host_filesystem_size_bytes{$fs}$targets)",
                    limit=Limit(FILESYSTEM_AVAILABLE.alert, below=True),
                ),
                Row(
                    "filesystem_days_left",
                    "Days until the filesystem is full",
                    "min by (instance, mountpoint) (\n"
                    "  last_over_time(erp_host_filesystem_avail_bytes{$fs}[$range])\n"
                    "  / (-deriv(erp_host_filesystem_avail_bytes{$fs}[$range]) * 86400)$targets)",
                    "days",
                    detail=("mountpoint",),
                    help="At the linear trend of the free space over the range ('never' when not shrinking).",
                    trend="erp_host_filesystem_avail_bytes{$fs}",
                ),
            ),
        ),
    ),
    charts=CAPACITY_CHARTS,
)

HEALTH = Report(
    key="health",
    title="ERP health report",
    sections=(
        Section(
            key="targets",
            title="Targets",
            subject="target",
            subjects=_TARGETS,
            rows=(
                Row(
                    "up_ratio",
                    "Up (share of the range)",
                    "avg by (target) (avg_over_time(erp_up{$sel}[$range]))",
                    "ratio",
                    limit=Limit(warning=1.0, below=True),
                ),
                Row(
                    "up_now",
                    "Up now",
                    "min by (target) (erp_up{$sel})",
                    "bool",
                    limit=Limit(critical=1.0, below=True),
                ),
                Row(
                    "checks_failing",
                    "Checks failing now",
                    _failing("erp_check_success", "== 0", "target", 'target!="",$sel'),
                    "count",
                    detail=("check",),
                    limit=Limit(warning=0.0),
                ),
                Row(
                    "checks_stale",
                    "Stale checks now",
                    _failing("erp_check_stale", "== 1", "target", 'target!="",$sel'),
                    "count",
                    detail=("check",),
                    limit=Limit(warning=0.0),
                ),
                Row(
                    "long_running_peak",
                    "Peak long-running queries",
                    "max by (target) (max_over_time(erp_database_long_running_queries{$sel}[$range]))",
                    "count",
                    limit=Limit("ErpDatabaseLongRunningQueries", critical_key=None),
                ),
                Row(
                    "oldest_query_peak",
                    "Longest-running query",
                    "max by (target) (max_over_time(erp_database_oldest_query_age_seconds{$sel}[$range]))",
                    "seconds",
                    limit=Limit("ErpDatabaseLongRunningQueries", warning_key=None),
                ),
                Row(
                    "blocked_peak",
                    "Peak blocked sessions",
                    "max by (target) (max_over_time(erp_database_blocked_sessions{$sel}[$range]))",
                    "count",
                    limit=Limit("ErpDatabaseBlockedSessions", critical_key=None),
                ),
                Row(
                    "lock_wait_peak",
                    "Longest lock wait",
                    "max by (target) (max_over_time(erp_database_lock_wait_longest_seconds{$sel}[$range]))",
                    "seconds",
                    limit=Limit("ErpDatabaseBlockedSessions", warning_key=None),
                ),
                Row(
                    "invalid_indexes",
                    "Invalid indexes now",
                    "max by (target) (erp_database_invalid_indexes{$sel})",
                    "count",
                    limit=Limit("ErpDatabaseInvalidIndexes", critical_key=None),
                ),
                Row(
                    "duplicate_indexes",
                    "Duplicate indexes now",
                    "max by (target) (erp_database_duplicate_indexes{$sel})",
                    "count",
                ),
                Row(
                    "audits_breaching",
                    "Audits over their warning threshold",
                    "(\n"
                    f"  sum by (target, owner) ({BREACHING_BY_OWNER.selected('$sel')})\n"
                    "  or count by (target, owner) (erp_audit_violations{$sel}\n"
                    "    > on (job, instance, target, audit) group_left () erp_audit_warning_threshold)\n"
                    ")\n"
                    "or on (target, owner) (count by (target, owner) (erp_audit_violations{$sel}) * 0)",
                    "count",
                    detail=("owner",),
                    limit=Limit(warning=0.0),
                    help="Data-governance audits of each owner whose violations are above their warning threshold.",
                ),
                Row(
                    "error_budget_left",
                    "Error budget left (SLO period)",
                    f"min by (target, transaction, slo) ({BUDGET_REMAINING}{{$sel}})",
                    "ratio",
                    detail=("transaction", "slo"),
                    limit=Limit(warning=0.25, critical=0.0, below=True),
                    help="Share of the error budget each business transaction has left over the SLO period, per "
                    "objective (availability, latency; thresholds.yml `slos`); below 0 the objective is missed.",
                ),
            ),
        ),
        Section(
            key="exporters",
            title="Exporters (host checks and backups)",
            subject="instance",
            subjects=_INSTANCES,
            rows=(
                Row(
                    "checks_failing",
                    "Checks failing now",
                    _failing("erp_check_success", "== 0", "instance", 'target=""'),
                    "count",
                    detail=("check",),
                    limit=Limit(warning=0.0),
                ),
                Row(
                    "checks_stale",
                    "Stale checks now",
                    _failing("erp_check_stale", "== 1", "instance", 'target=""'),
                    "count",
                    detail=("check",),
                    limit=Limit(warning=0.0),
                ),
                Row(
                    "backup_age",
                    "Newest backup age",
                    "max by (instance, backup) (time() - erp_backup_newest_timestamp_seconds$targets)",
                    "seconds",
                    detail=("backup",),
                    limit=Limit("ErpBackupStale", scale=3600.0),
                ),
                Row(
                    "backup_intact",
                    "Newest backup passed integrity",
                    "min by (instance, backup) (erp_backup_integrity_ok$targets)",
                    "bool",
                    detail=("backup",),
                    limit=Limit(critical=1.0, below=True),
                ),
                Row(
                    "backup_files",
                    "Backup files",
                    "min by (instance, backup) (erp_backup_files$targets)",
                    "count",
                    detail=("backup",),
                    limit=Limit(critical=1.0, below=True),
                ),
            ),
        ),
        Section(
            key="alerts",
            title="Alerts",
            subject="",
            subjects="",
            rows=(
                Row(
                    "alerts_fired",
                    "Alerts that fired (series)",
                    'count by (alertname, severity) (count_over_time(ALERTS{alertstate="firing",$sel}[$range]))\n'
                    + _NO_ALERTS,
                    "count",
                    detail=("alertname", "severity"),
                    help="Distinct alert series (alert name and labels) that were firing at some point of the range.",
                ),
                Row(
                    "alerts_firing_now",
                    "Alerts firing now (series)",
                    'count by (alertname, severity) (ALERTS{alertstate="firing",$sel})\n' + _NO_ALERTS,
                    "count",
                    detail=("alertname", "severity"),
                ),
            ),
        ),
    ),
    charts=HEALTH_CHARTS,
)

# -- governance: the audit scorecard -----------------------------------------------------------------------------

_AUDIT_KEYS = "on (job, instance, target, audit) group_left ()"
_VIOLATIONS = "erp_audit_violations{$sel}"


def _over(threshold: str, by: str) -> str:
    """Audits over their published `threshold` now, by `by`; 0 for an owner whose audits are all below."""
    return (f"count by ({by}) ({_VIOLATIONS} > {_AUDIT_KEYS} erp_audit_{threshold}_threshold)\n"
            f"or on ({by}) (count by ({by}) ({_VIOLATIONS}) * 0)")


def _time_over(threshold: str) -> str:
    """How long over the range an audit was over its published `threshold` (steps over it times the step)."""
    return (f"max by (owner, audit, target) (sum_over_time(\n  ({_VIOLATIONS} > bool {_AUDIT_KEYS} "
            f"erp_audit_{threshold}_threshold)[$range:$step]))\n* $step_seconds")


_AUDIT = "max by (owner, audit, target)"

GOVERNANCE = Report(
    key="governance",
    title="ERP data governance scorecard",
    sections=(
        Section(
            key="owners",
            title="Owners",
            subject="owner",
            subjects=f"group by (owner) (last_over_time({_VIOLATIONS}[$range]))",
            rows=(
                Row("audits", "Audits", f"count by (owner) ({_VIOLATIONS})", "count"),
                Row("over_warning", "Audits over their warning threshold", _over("warning", "owner"), "count",
                    limit=Limit(warning=0.0)),
                Row("over_critical", "Audits over their critical threshold", _over("critical", "owner"), "count",
                    limit=Limit(critical=0.0)),
                Row("violations", "Records in violation", f"sum by (owner) ({_VIOLATIONS})", "count"),
            ),
        ),
        Section(
            key="audits",
            title="Audits",
            subject="owner",
            subjects="",
            rows=(
                Row("status", "Status against its thresholds",
                    f"{_AUDIT} (\n  ({_VIOLATIONS} > bool {_AUDIT_KEYS} erp_audit_warning_threshold)\n"
                    f"  + ({_VIOLATIONS} > bool {_AUDIT_KEYS} erp_audit_critical_threshold))",
                    "level", detail=("audit", "target"), limit=Limit(warning=0.5, critical=1.5),
                    help="ok, warning (violations over the audit's warning threshold) or critical, as the "
                    "ErpAuditViolations alert compares them."),
                Row("violations", "Violations now", f"{_AUDIT} ({_VIOLATIONS})", "count", detail=("audit", "target")),
                Row("warning_threshold", "Warning over", f"{_AUDIT} (erp_audit_warning_threshold{{$sel}})", "count",
                    detail=("audit", "target")),
                Row("critical_threshold", "Critical over", f"{_AUDIT} (erp_audit_critical_threshold{{$sel}})",
                    "count", detail=("audit", "target")),
                Row("trend", "Trend per day", f"{_AUDIT} (deriv({_VIOLATIONS}[$range]) * 86400)", "count_per_day",
                    detail=("audit", "target"), trend=_VIOLATIONS,
                    help="The linear trend of the violations over the range: are the owners catching up?"),
                Row("time_over_warning", "Time over its warning threshold", _time_over("warning"), "seconds",
                    detail=("audit", "target")),
                Row("time_over_critical", "Time over its critical threshold", _time_over("critical"), "seconds",
                    detail=("audit", "target")),
            ),
        ),
    ),
    charts=(
        Chart("violations_by_owner", "Records in violation by owner", f"sum by (owner) ({_VIOLATIONS})", "count",
              ("owner",)),
        Chart("breaching_by_owner", "Audits over their warning threshold by owner",
              _over("warning", "owner"), "count", ("owner",)),
        Chart("violations_by_audit", "Violations by audit", f"sum by (audit) ({_VIOLATIONS})", "count", ("audit",),
              forecast=True),
    ),
)


# -- month-end: the measures of one closing period (exporter/report/month_end.py runs it once per close) --------

MONTH_END = Report(
    key="month-end",
    title="ERP month-end close",
    sections=(
        Section(
            key="targets",
            title="Targets",
            subject="target",
            subjects=_TARGETS,
            rows=(
                Row("users_peak", "Peak logged-in ERP users",
                    "max by (target) (max_over_time(erp_users_logged_in{$sel}[$range]))", "count"),
                Row("sessions_peak", "Peak ERP sessions",
                    "max by (target) (max_over_time(erp_sessions_active{$sel}[$range]))", "count"),
                Row("database_sessions_peak", "Peak database sessions",
                    "max by (target) (max_over_time(\n  sum by (job, instance, target) "
                    "(erp_database_sessions{$sel})[$range:$step]))", "count"),
                CONNECTIONS_PEAK,
                LATENCY_P95_PEAK,
                Row("transaction_failures", "Transaction failures",
                    "sum by (target, transaction) (increase(erp_transaction_failures_total{$sel}[$range]))",
                    "count", detail=("transaction",)),
                Row("database_response_peak", "Peak database round trip",
                    "max by (target) (max_over_time(erp_database_probe_duration_seconds{$sel}[$range]))", "seconds"),
                Row("database_response_avg", "Average database round trip",
                    "avg by (target) (avg_over_time(erp_database_probe_duration_seconds{$sel}[$range]))", "seconds"),
                Row("documents_created", "Documents created",
                    'sum by (target) (increase(erp_business_documents_total{event="created",$sel}[$range]))',
                    "count"),
            ),
        ),
        Section(
            key="hosts",
            title="Hosts (exporter instances)",
            subject="instance",
            subjects=_INSTANCES,
            rows=(
                CPU_PEAK,
                MEMORY_AVAILABLE_LOW,
            ),
        ),
        Section(
            key="alerts",
            title="Alerts",
            subject="",
            subjects="",
            rows=(
                Row("alerts_fired", "Alerts that fired (series)",
                    'count(count_over_time(ALERTS{alertstate="firing",$sel}[$range]))\n' + _NO_ALERTS, "count"),
                Row("critical_alerts_fired", "Critical alerts that fired (series)",
                    'count(count_over_time(ALERTS{alertstate="firing",severity="critical",$sel}[$range]))\n'
                    + _NO_ALERTS, "count"),
            ),
        ),
    ),
    charts=(
        Chart("users", "Logged-in ERP users through each close", "max by (target) (erp_users_logged_in{$sel})",
              "count", ("target",)),
        Chart("database_response", "Database round trip through each close",
              "max by (target) (erp_database_probe_duration_seconds{$sel})", "seconds", ("target",)),
        Chart("latency", "Business transaction p95 through each close",
              f"max by (target, transaction) ({LATENCY_P95.selected('$sel')})", "seconds", ("target", "transaction"),
              fallback=_P95_FROM_BUCKETS),
    ),
)

REPORTS: dict[str, Report] = {report.key: report for report in (CAPACITY, HEALTH, GOVERNANCE)}
