"""Database response: can we log in, how long does it take, how long does a probe query take.

With `fresh_connection` (the default) every run opens a new connection, so a refused login, an
exhausted connection limit or a slow authentication server shows up at once; the connection is closed
after the run, so it never pushes a pooled session (and its session setup) out of the pool.
"""

from __future__ import annotations

import time
from typing import ClassVar

from exporter.checks.base import BaseCheck, CheckError, RunContext
from exporter.checks.registry import CheckKind, one_check_per_entry
from exporter.config.model import CheckSettings, DbResponseCheckConfig
from exporter.db.session_setup import session_for
from exporter.db.target import TargetDatabase
from exporter.metrics import MetricFamily, MetricSpec, StatusRole, counter, gauge

UP = gauge(
    "erp_up", "Whether the database answered the probe query (1) or not (0).", status_role=StatusRole.TARGET_UP
)
CONNECT_DURATION = gauge(
    "erp_database_connect_duration_seconds", "How long opening the probe's connection took (login included)."
)
PROBE_DURATION = gauge("erp_database_probe_duration_seconds", "Round trip of the probe query.")
INFO = gauge(
    "erp_database_info", "What the database is; the value is always 1.", "dialect", "dbms", "version"
)
SESSION_READ_ONLY = gauge(
    "erp_database_session_read_only",
    "Whether the exporter's sessions are read-only at the database (1), not only by the statement guard.",
)
POOL_OPEN = gauge("erp_database_pool_connections", "Connections the exporter holds open to the database.")
POOL_MAX = gauge("erp_database_pool_max_connections", "The most connections the exporter may open.")
POOL_HUNG = gauge(
    "erp_database_pool_hung_connections",
    "Connections held by a query that did not return even after cancel (the server may be hung).",
)
STATEMENTS = counter("erp_database_statements_total", "Statements the exporter sent to the database.")
CONNECT_FAILURES = counter("erp_database_connect_failures_total", "Failed attempts to connect.")
BACKOFF = gauge(
    "erp_database_connect_backoff_seconds", "Seconds until the next connect attempt is allowed (0: now)."
)


class DbResponseCheck(BaseCheck):
    kind: ClassVar[str] = "db_response"
    metrics: ClassVar[tuple[MetricSpec, ...]] = (
        UP,
        CONNECT_DURATION,
        PROBE_DURATION,
        INFO,
        SESSION_READ_ONLY,
        POOL_OPEN,
        POOL_MAX,
        POOL_HUNG,
        STATEMENTS,
        CONNECT_FAILURES,
        BACKOFF,
    )

    def __init__(
        self,
        name: str,
        database: TargetDatabase,
        probe_query: str | None = None,
        fresh_connection: bool = True,
    ) -> None:
        super().__init__(name)
        self._database = database
        self._probe_query = probe_query
        self._fresh_connection = fresh_connection

    def run(self, ctx: RunContext) -> list[MetricFamily]:
        database = self._database
        with database.session(ctx, fresh=self._fresh_connection) as session:
            connection = session.connection
            started = time.monotonic()
            session.query(self._probe_query or session_for(session.dialect).probe_query, max_rows=1)
            probe_seconds = time.monotonic() - started
            families = [
                UP.family().add(1.0),
                PROBE_DURATION.family().add(probe_seconds),
                INFO.family().add(
                    1.0,
                    dialect=connection.dialect.value,
                    dbms=connection.dbms_name,
                    version=connection.dbms_version,
                ),
                SESSION_READ_ONLY.family().add(1.0 if connection.read_only else 0.0),
            ]
            if not session.lease.reused:
                families.append(CONNECT_DURATION.family().add(connection.connect_seconds))
        return families + _pool_families(database)

    def failure_families(self, error: CheckError) -> list[MetricFamily]:
        return [UP.family().add(0.0), *_pool_families(self._database)]


def _pool_families(database: TargetDatabase) -> list[MetricFamily]:
    stats = database.pool_stats()
    return [
        POOL_OPEN.family().add(stats.open),
        POOL_MAX.family().add(stats.max_size),
        POOL_HUNG.family().add(stats.hung),
        STATEMENTS.family().add(database.statements_total),
        CONNECT_FAILURES.family().add(stats.connect_failures_total),
        BACKOFF.family().add(stats.backoff_remaining),
    ]


def _build(settings: CheckSettings, database: TargetDatabase) -> DbResponseCheck:
    assert isinstance(settings, DbResponseCheckConfig)
    return DbResponseCheck(
        settings.effective_name,
        database,
        probe_query=settings.probe_query,
        fresh_connection=settings.fresh_connection,
    )


def check_kind() -> CheckKind:
    """`db_response`: one check per entry of a target (every target has one by default)."""
    return CheckKind("db_response", DbResponseCheck.metrics, build_for_target=one_check_per_entry(_build))
