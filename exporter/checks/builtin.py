"""The check kinds shipped with the exporter, registered into a fresh registry."""

from __future__ import annotations

from exporter.checks.audits import AuditCheck
from exporter.checks.backup import BackupCheck
from exporter.checks.base import Check
from exporter.checks.calendar import CalendarCheck
from exporter.checks.db_activity import DbActivityCheck
from exporter.checks.db_maintenance import DbMaintenanceCheck
from exporter.checks.db_response import DbResponseCheck
from exporter.checks.db_sessions import DbSessionsCheck
from exporter.checks.db_size import DbSizeCheck
from exporter.checks.host import HostCheck
from exporter.checks.http_transaction import HttpTransactionCheck
from exporter.checks.log_follow import LogCheck
from exporter.checks.pack import build_pack_checks, shipped_metric_specs
from exporter.checks.privileges import PrivilegesCheck
from exporter.checks.process_group import ProcessGroupCheck
from exporter.checks.registry import CheckKind, CheckRegistry, ScheduledCheck
from exporter.checks.replication import ReplicationCheck
from exporter.checks.sql_transaction import SqlStep, SqlTransactionCheck
from exporter.checks.transactions_metrics import DEFAULT_BUCKETS
from exporter.config.loader import LoadedConfig
from exporter.config.model import (
    CheckSettings,
    DbActivityCheckConfig,
    DbResponseCheckConfig,
    DbSizeCheckConfig,
    SqlTransactionCheckConfig,
)
from exporter.db.target import TargetDatabase


def _db_response(settings: CheckSettings, database: TargetDatabase) -> Check:
    assert isinstance(settings, DbResponseCheckConfig)
    return DbResponseCheck(
        settings.effective_name,
        database,
        probe_query=settings.probe_query,
        fresh_connection=settings.fresh_connection,
    )


def _privileges(settings: CheckSettings, database: TargetDatabase) -> Check:
    return PrivilegesCheck(settings.effective_name, database)


def _db_sessions(settings: CheckSettings, database: TargetDatabase) -> Check:
    return DbSessionsCheck(settings.effective_name, database)


def _db_activity(settings: CheckSettings, database: TargetDatabase) -> Check:
    assert isinstance(settings, DbActivityCheckConfig)
    return DbActivityCheck(settings.effective_name, database, long_query_threshold=settings.long_query_threshold)


def _db_size(settings: CheckSettings, database: TargetDatabase) -> Check:
    assert isinstance(settings, DbSizeCheckConfig)
    return DbSizeCheck(settings.effective_name, database, top_tables=settings.top_tables)


def _db_maintenance(settings: CheckSettings, database: TargetDatabase) -> Check:
    return DbMaintenanceCheck(settings.effective_name, database)


def _replication(settings: CheckSettings, database: TargetDatabase) -> Check:
    return ReplicationCheck(settings.effective_name, database)


def _audits(settings: CheckSettings, database: TargetDatabase, loaded: LoadedConfig) -> list[ScheduledCheck]:
    """One check per audit (`audit:<name>`), each on its own interval and timeout."""
    audits = loaded.audits.get((database.name, settings.effective_name), ())
    return [ScheduledCheck(a.check_name, AuditCheck(a, database), a.interval, a.timeout) for a in audits]


def _sql_transaction(settings: CheckSettings, database: TargetDatabase) -> Check:
    assert isinstance(settings, SqlTransactionCheckConfig)
    return SqlTransactionCheck(
        settings.effective_name,
        database,
        [SqlStep(step.name, step.sql) for step in settings.steps],
        buckets=settings.buckets or DEFAULT_BUCKETS,
    )


def default_registry() -> CheckRegistry:
    """A registry with every built-in check kind."""
    registry = CheckRegistry()
    registry.register(CheckKind("db_response", DbResponseCheck.metrics, _db_response))
    registry.register(CheckKind("privileges", PrivilegesCheck.metrics, _privileges))
    registry.register(CheckKind("db_sessions", DbSessionsCheck.metrics, _db_sessions))
    registry.register(CheckKind("db_activity", DbActivityCheck.metrics, _db_activity))
    registry.register(CheckKind("db_size", DbSizeCheck.metrics, _db_size))
    registry.register(CheckKind("db_maintenance", DbMaintenanceCheck.metrics, _db_maintenance))
    registry.register(CheckKind("replication", ReplicationCheck.metrics, _replication))
    registry.register(CheckKind("sql_transaction", SqlTransactionCheck.metrics, _sql_transaction))
    registry.register(CheckKind("host", HostCheck.metrics))
    registry.register(CheckKind("process_group", ProcessGroupCheck.metrics))
    registry.register(CheckKind("backup", BackupCheck.metrics))
    registry.register(CheckKind("log", LogCheck.metrics))
    registry.register(CheckKind("calendar", CalendarCheck.metrics))
    registry.register(CheckKind("http_transaction", HttpTransactionCheck.metrics))
    registry.register(CheckKind("audits", AuditCheck.metrics, build_many_for_target=_audits))
    registry.register(CheckKind("pack", shipped_metric_specs(), build_many_for_target=build_pack_checks))
    return registry
