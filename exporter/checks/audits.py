"""Data-governance audits: one check per audit, publishing its violation count and thresholds.

How an audit is counted: its SQL runs once per run, wrapped as

    SELECT audit_rows.*, COUNT(*) OVER () AS erp_audit_rows FROM (<audit sql>) audit_rows ORDER BY 1 LIMIT 20

so one statement gives the exact number of offending rows (the window count, computed by the database) and
at most 20 of them, the lowest keys first. Memory and traffic stay bounded however many records are in
violation, and the query is not run a second time for a COUNT(*). No row means no violation (count 0).

The sample keys are kept in the check object (`latest()`), read by the status page and `erp-exporter
audit`; they are never labels, so a data error cannot create series.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import ClassVar

from exporter.audits.model import SAMPLE_LIMIT, ResolvedAudit
from exporter.checks.base import BaseCheck, CheckError, ErrorReason, RunContext
from exporter.checks.registry import CheckKind, ScheduledCheck
from exporter.config.loader import LoadedConfig
from exporter.config.model import CheckSettings
from exporter.db.dialect import Dialect
from exporter.db.target import QueryResult, TargetDatabase
from exporter.metrics import MetricFamily, MetricSpec, gauge
from exporter.run import Findings
from exporter.store import CheckKey, CheckState

LABELS = ("audit", "category", "owner", "support_line", "severity")
VIOLATIONS = gauge(
    "erp_audit_violations", "Records in violation of the audit (rows its query returned).", *LABELS
)
WARNING_THRESHOLD = gauge(
    "erp_audit_warning_threshold", "The audit is in warning when its violations are above this.", *LABELS
)
CRITICAL_THRESHOLD = gauge(
    "erp_audit_critical_threshold", "The audit is critical when its violations are above this.", *LABELS
)

TOTAL_COLUMN = "erp_audit_rows"
MAX_KEY_CHARS = 200  # a sample key longer than this is cut (bounded memory, a readable status page)


@dataclass(frozen=True)
class AuditResult:
    """The outcome of the audit's last successful run."""

    count: int
    samples: tuple[str, ...]
    finished_at: float  # wall-clock time
    duration: float


def wrap_sql(sql: str, dialect: Dialect, limit: int = SAMPLE_LIMIT) -> str:
    """The one statement that counts every row of `sql` and returns the `limit` lowest keys."""
    body = sql.strip().rstrip(";").rstrip()
    select = f"audit_rows.*, COUNT(*) OVER () AS {TOTAL_COLUMN} FROM (\n{body}\n) audit_rows"
    if dialect is Dialect.MSSQL:
        return f"SELECT TOP {limit} {select} ORDER BY 1"
    if dialect in (Dialect.ORACLE, Dialect.DB2):
        return f"SELECT {select} ORDER BY 1 FETCH FIRST {limit} ROWS ONLY"
    return f"SELECT {select} ORDER BY 1 LIMIT {limit}"


def result_to_counts(name: str, result: QueryResult) -> tuple[int, tuple[str, ...]]:
    """(violations, sample keys) from the wrapped query's result; pure, for tests."""
    columns = [column.lower() for column in result.columns]
    if not columns or columns[0] != "key":
        first = result.columns[0] if result.columns else "nothing"
        raise CheckError(
            ErrorReason.QUERY, f"audit {name}: the first column of its query must be named key, got {first!r}"
        )
    if not result.rows:
        return 0, ()
    total = result.rows[0][-1]
    try:
        count = int(total)
    except (TypeError, ValueError):
        raise CheckError(ErrorReason.QUERY, f"audit {name}: the row count is not a number: {total!r}") from None
    samples = tuple(_key_text(row[0]) for row in result.rows[:SAMPLE_LIMIT])
    return count, samples


def _key_text(value: object) -> str:
    text = "(no key)" if value is None else str(value)
    return text if len(text) <= MAX_KEY_CHARS else text[: MAX_KEY_CHARS - 1] + "…"


class AuditCheck(BaseCheck):
    kind: ClassVar[str] = "audits"
    metrics: ClassVar[tuple[MetricSpec, ...]] = (VIOLATIONS, WARNING_THRESHOLD, CRITICAL_THRESHOLD)

    def __init__(self, audit: ResolvedAudit, database: TargetDatabase) -> None:
        super().__init__(audit.check_name)
        self.audit = audit
        self.target = database.name
        self._database = database
        self._latest: AuditResult | None = None  # replaced whole, so readers need no lock

    def latest(self) -> AuditResult | None:
        """The last successful run's count and sample keys (None before the first)."""
        return self._latest

    def run(self, ctx: RunContext) -> list[MetricFamily]:
        started = time.monotonic()
        with self._database.session(ctx) as session:
            sql = self.audit.sql_for(session.dialect)
            if sql is None:
                raise CheckError(
                    ErrorReason.QUERY,
                    f"audit {self.audit.name} has no SQL for {session.dialect.value} "
                    f"(it has: {', '.join(self.audit.dialects())})",
                )
            result = session.query(wrap_sql(sql, session.dialect), max_rows=SAMPLE_LIMIT)
        count, samples = result_to_counts(self.audit.name, result)
        ctx.findings = Findings(count, samples)
        self._latest = AuditResult(count, samples, time.time(), time.monotonic() - started)
        return [VIOLATIONS.family().add_labels(self.audit.labels(), float(count)), *self._thresholds()]

    def failure_families(self, error: CheckError) -> list[MetricFamily]:
        # The thresholds are configuration: they stay; a count that could not be taken is not published.
        return self._thresholds()

    def _thresholds(self) -> list[MetricFamily]:
        labels = self.audit.labels()
        return [
            WARNING_THRESHOLD.family().add_labels(labels, self.audit.warning),
            CRITICAL_THRESHOLD.family().add_labels(labels, self.audit.critical),
        ]


@dataclass(frozen=True)
class AuditReport:
    """One audit as the status page and the CLI show it."""

    target: str
    audit: ResolvedAudit
    result: AuditResult | None


def audit_reports(states: Iterable[CheckState], loaded: LoadedConfig) -> list[AuditReport]:
    """The scheduled audits of a config with the results the store holds, by target and audit name.

    Read from the store's snapshot (what /metrics reads) and the config's resolved audits, not from live
    check objects; an audit that is not scheduled (`erp-exporter audit` runs one) has no state and no row.
    """
    by_key = {state.key: state for state in states}
    reports = []
    for (target, _), audits in loaded.audits.items():
        for audit in audits:
            state = by_key.get(CheckKey(target, audit.check_name))
            if state is not None:
                reports.append(AuditReport(target, audit, audit_result(state)))
    return sorted(reports, key=lambda report: (report.target, report.audit.name))


def audit_result(state: CheckState) -> AuditResult | None:
    """An audit's last successful result as the store holds it (None before the first)."""
    findings = state.findings
    if findings is None or state.last_success_wall is None:
        return None
    return AuditResult(findings.count, findings.samples, state.last_success_wall, state.last_success_duration)


def build_audit_checks(settings: CheckSettings, database: TargetDatabase, loaded: LoadedConfig) -> list[ScheduledCheck]:
    """One check per audit the entry resolved to (`audit:<name>`), each on its own interval and timeout."""
    audits = loaded.audits.get((database.name, settings.effective_name), ())
    return [ScheduledCheck(a.check_name, AuditCheck(a, database), a.interval, a.timeout) for a in audits]


def check_kind() -> CheckKind:
    """`audits`: an entry of a target runs each of its audits as a check of its own."""
    return CheckKind("audits", AuditCheck.metrics, build_for_target=build_audit_checks)
