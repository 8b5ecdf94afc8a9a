"""Database activity: long-running queries and sessions waiting for a lock.

One statement per run, built in per dialect. Scope: the sessions of the target's own database (the
database the connection opened; on MariaDB/MySQL without a default database, the whole server), never
the session the check runs on, never idle sessions (idle in transaction included: they run nothing; the
db_sessions check counts them). The exporter's other sessions do count: a slow audit is a long query too.
A blocked session waits for a heavyweight lock (row, table, transaction, advisory) another session holds.

* PostgreSQL: `pg_stat_activity` (client backends in state `active` or `fastpath function call`) and
  `pg_locks` (locks not granted; the wait time comes from `pg_locks.waitstart`, PostgreSQL 14 and later;
  on older servers it is measured from `state_change`, an upper bound). The login needs `pg_monitor`
  (or `pg_read_all_stats`): without it the state and start time of other users' sessions read NULL and
  they are not counted.
* MariaDB/MySQL: `information_schema.PROCESSLIST` (commands `Query` and `Execute`; `TIME_MS`) and
  `information_schema.INNODB_TRX` (transactions in `LOCK WAIT`; `trx_wait_started`, whole seconds). The
  login needs the `PROCESS` privilege: without it PROCESSLIST shows only its own sessions and INNODB_TRX
  is refused. Metadata-lock waits (a DDL waiting for a table) are not InnoDB lock waits and are not
  counted as blocked. The server refreshes its copy of INNODB_TRX only when it was last read more than
  0.1 s before, so the lock waits can be that much behind.
* SQLite has no sessions: the check publishes nothing there.

When no query runs, the oldest query age is 0; when no session waits, the longest wait is 0.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar

from exporter.checks.base import BaseCheck, RunContext
from exporter.checks.registry import CheckKind, one_check_per_entry
from exporter.config.model import CheckSettings, DbActivityCheckConfig
from exporter.db.dialect import Dialect
from exporter.db.target import Session, TargetDatabase
from exporter.metrics import MetricFamily, MetricSpec, gauge

LONG_RUNNING = gauge(
    "erp_database_long_running_queries",
    "Queries running longer than erp_database_long_running_query_threshold_seconds.",
)
OLDEST_QUERY_AGE = gauge(
    "erp_database_oldest_query_age_seconds", "How long the oldest running query has been running (0: none)."
)
THRESHOLD = gauge(
    "erp_database_long_running_query_threshold_seconds",
    "A query running longer than this counts as long-running (the check's long_query_threshold).",
)
BLOCKED = gauge("erp_database_blocked_sessions", "Sessions waiting for a lock another session holds.")
LOCK_WAIT_LONGEST = gauge(
    "erp_database_lock_wait_longest_seconds", "How long the longest current lock wait has lasted (0: none)."
)

DEFAULT_LONG_QUERY_THRESHOLD = 300.0

_PG_RUNNING = """
    FROM pg_stat_activity a
    WHERE a.datname = current_database() AND a.pid <> pg_backend_pid()
      AND a.backend_type = 'client backend' AND a.state IN ('active', 'fastpath function call')"""
_PG_WAITING = """
    FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
    WHERE NOT l.granted AND a.datname = current_database() AND a.pid <> pg_backend_pid()"""


def _pg_sql(wait_started: str) -> str:
    return f"""
    SELECT
      (SELECT count(*) {_PG_RUNNING}
         AND extract(epoch FROM clock_timestamp() - a.query_start) > ?) AS long_running,
      (SELECT coalesce(max(extract(epoch FROM clock_timestamp() - a.query_start)), 0) {_PG_RUNNING}
      ) AS oldest_query_age,
      (SELECT count(DISTINCT l.pid) {_PG_WAITING}) AS blocked,
      (SELECT coalesce(max(extract(epoch FROM clock_timestamp() - {wait_started})), 0) {_PG_WAITING}
      ) AS lock_wait_longest
    """


PG_ACTIVITY_SQL = _pg_sql("l.waitstart")
PG13_ACTIVITY_SQL = _pg_sql("a.state_change")  # pg_locks.waitstart is new in PostgreSQL 14

_MYSQL_RUNNING = """
    FROM information_schema.PROCESSLIST p
    WHERE p.ID <> CONNECTION_ID() AND p.COMMAND IN ('Query', 'Execute')
      AND (DATABASE() IS NULL OR p.DB = DATABASE())"""
_MYSQL_WAITING = """
    FROM information_schema.INNODB_TRX t JOIN information_schema.PROCESSLIST p ON p.ID = t.trx_mysql_thread_id
    WHERE t.trx_state = 'LOCK WAIT' AND p.ID <> CONNECTION_ID() AND (DATABASE() IS NULL OR p.DB = DATABASE())"""

MYSQL_ACTIVITY_SQL = f"""
    SELECT
      (SELECT COUNT(*) {_MYSQL_RUNNING} AND p.TIME_MS > ? * 1000) AS long_running,
      (SELECT COALESCE(MAX(p.TIME_MS), 0) / 1000 {_MYSQL_RUNNING}) AS oldest_query_age,
      (SELECT COUNT(*) {_MYSQL_WAITING}) AS blocked,
      (SELECT COALESCE(MAX(TIMESTAMPDIFF(MICROSECOND, t.trx_wait_started, NOW(6))), 0) / 1000000
        {_MYSQL_WAITING}) AS lock_wait_longest
    """


@dataclass(frozen=True)
class Activity:
    """One reading, straight from the row: values may be None or driver types (Decimal)."""

    long_running: object
    oldest_query_age: object
    blocked: object
    lock_wait_longest: object


def activity_to_families(activity: Activity, threshold: float) -> list[MetricFamily]:
    """Pure conversion, the part unit tests call."""
    return [
        LONG_RUNNING.family().add_raw(activity.long_running),
        OLDEST_QUERY_AGE.family().add_raw(activity.oldest_query_age),
        THRESHOLD.family().add(threshold),
        BLOCKED.family().add_raw(activity.blocked),
        LOCK_WAIT_LONGEST.family().add_raw(activity.lock_wait_longest),
    ]


def postgresql_major(version: str) -> int | None:
    """The major version from `SHOW server_version` ('15.18' -> 15, '16beta1' -> 16, '9.6.24' -> 9)."""
    match = re.match(r"\d+", version)
    return int(match.group(0)) if match else None


def activity_sql(session: Session) -> str | None:
    """The dialect's statement, or None where there are no sessions to look at."""
    dialect = session.dialect
    if dialect is Dialect.POSTGRESQL:
        major = postgresql_major(session.connection.dbms_version)
        return PG13_ACTIVITY_SQL if major is not None and major < 14 else PG_ACTIVITY_SQL
    if dialect is Dialect.MYSQL:
        return MYSQL_ACTIVITY_SQL
    return None


def fetch_activity(session: Session, threshold: float) -> Activity | None:
    sql = activity_sql(session)
    if sql is None:
        return None
    rows = session.query(sql, (threshold,), max_rows=1).rows
    if not rows:
        return None
    long_running, oldest, blocked, longest = rows[0][:4]
    return Activity(long_running, oldest, blocked, longest)


class DbActivityCheck(BaseCheck):
    kind: ClassVar[str] = "db_activity"
    metrics: ClassVar[tuple[MetricSpec, ...]] = (
        LONG_RUNNING,
        OLDEST_QUERY_AGE,
        THRESHOLD,
        BLOCKED,
        LOCK_WAIT_LONGEST,
    )

    def __init__(
        self, name: str, database: TargetDatabase, long_query_threshold: float = DEFAULT_LONG_QUERY_THRESHOLD
    ) -> None:
        super().__init__(name)
        self._database = database
        self._threshold = long_query_threshold

    def run(self, ctx: RunContext) -> list[MetricFamily]:
        with self._database.session(ctx) as session:
            activity = fetch_activity(session, self._threshold)
        if activity is None:
            return []
        return activity_to_families(activity, self._threshold)


def _build(settings: CheckSettings, database: TargetDatabase) -> DbActivityCheck:
    assert isinstance(settings, DbActivityCheckConfig)
    return DbActivityCheck(settings.effective_name, database, long_query_threshold=settings.long_query_threshold)


def check_kind() -> CheckKind:
    """`db_activity`: one check per entry of a target."""
    return CheckKind("db_activity", DbActivityCheck.metrics, build_for_target=one_check_per_entry(_build))
