"""The check kinds shipped with the exporter, registered into a fresh registry."""

from __future__ import annotations

from exporter.checks.base import Check
from exporter.checks.db_response import DbResponseCheck
from exporter.checks.host import HostCheck
from exporter.checks.privileges import PrivilegesCheck
from exporter.checks.process_group import ProcessGroupCheck
from exporter.checks.registry import CheckKind, CheckRegistry
from exporter.config.model import CheckSettings, DbResponseCheckConfig
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


def default_registry() -> CheckRegistry:
    """A registry with every built-in check kind."""
    registry = CheckRegistry()
    registry.register(CheckKind("db_response", DbResponseCheck.metrics, _db_response))
    registry.register(CheckKind("privileges", PrivilegesCheck.metrics, _privileges))
    registry.register(CheckKind("host", HostCheck.metrics))
    registry.register(CheckKind("process_group", ProcessGroupCheck.metrics))
    return registry
