"""The check kinds shipped with the exporter, registered into a fresh registry.

Each kind's module says how its checks are built (its `check_kind()`); this list only decides which kinds
exist and in which order their checks are built: target checks first, then the exporter's own sections.
"""

from __future__ import annotations

from exporter.checks import (
    audits,
    backup,
    calendar,
    db_activity,
    db_maintenance,
    db_response,
    db_sessions,
    db_size,
    db_statements,
    host,
    http_transaction,
    log_follow,
    pack,
    privileges,
    process_group,
    replication,
    sql_transaction,
)
from exporter.checks.registry import CheckRegistry


def default_registry() -> CheckRegistry:
    """A registry with every built-in check kind."""
    registry = CheckRegistry()
    registry.register(db_response.check_kind())
    registry.register(privileges.check_kind())
    registry.register(db_sessions.check_kind())
    registry.register(db_activity.check_kind())
    registry.register(db_size.check_kind())
    registry.register(db_maintenance.check_kind())
    registry.register(db_statements.check_kind())
    registry.register(replication.check_kind())
    registry.register(sql_transaction.check_kind())
    registry.register(host.check_kind())
    registry.register(process_group.check_kind())
    registry.register(backup.check_kind())
    registry.register(log_follow.check_kind())
    registry.register(calendar.check_kind())
    registry.register(http_transaction.check_kind())
    registry.register(audits.check_kind())
    registry.register(pack.check_kind())
    return registry
