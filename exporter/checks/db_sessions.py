"""Database sessions by state, and how much of the connection limit they use.

An ERP pools its database connections, so these are sessions, not users (ERP packs count users). Every
session the server counts against its connection limit is counted here, the exporter's own included (it
is running this query, so it is one `active` session): the numbers are what the server sees.

States, one per session, in this order of precedence:

* `waiting`: waiting for a lock another session holds;
* `active`: running a statement;
* `idle_in_transaction`: between statements with a transaction open (it holds its locks and snapshot);
* `idle`: connected, doing nothing.

Per dialect:

* PostgreSQL: `pg_stat_activity`, client backends only (background workers, autovacuum and WAL senders
  have their own slots and do not count against `max_connections`). `waiting` is
  `wait_event_type = 'Lock'` (heavyweight locks: rows, tables, transaction ids); `idle in transaction
  (aborted)` counts as idle in transaction. A session whose state is not reported (`track_activities`
  off) is counted in `erp_database_connections` and in no state. The login needs `pg_monitor` (or
  `pg_read_all_stats`): without it, PostgreSQL hides the state of other users' sessions and the check
  fails with reason `auth` rather than publish the exporter's own session as the whole picture.
* MariaDB / MySQL: `information_schema.PROCESSLIST` with `INNODB_TRX` (both need the PROCESS privilege;
  without it the check fails with reason `auth`). `Sleep` is idle, or idle in transaction when the
  connection has an open InnoDB transaction (a transaction that has not touched an InnoDB table yet is
  invisible to the server's tables and counts as idle); waiting is an InnoDB `LOCK WAIT` or a
  `Waiting for ... lock` / `User lock` state (metadata, table and GET_LOCK locks). Daemon threads
  (event scheduler) and replication threads (`system user`) are left out.
* MS SQL Server: `sys.dm_exec_sessions` (user processes) with `sys.dm_exec_requests`; a request blocked
  by another session is waiting, one running, runnable or suspended is active, a sleeping session with
  `open_transaction_count > 0` is idle in transaction. The limit is `@@MAX_CONNECTIONS`. Needs VIEW SERVER
  STATE. This SQL cannot be run here (no SQL Server); its tests cover parsing and the read-only guard.
* SQLite has no sessions and no connection limit: the check publishes nothing there (success, no series)
  rather than invent values. So do dialects without built-in SQL (Oracle, HANA, Db2).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from exporter.checks.base import BaseCheck, CheckError, ErrorReason, RunContext
from exporter.checks.registry import CheckKind, one_check_per_entry
from exporter.config.model import CheckSettings
from exporter.db.dialect import Dialect
from exporter.db.target import TargetDatabase
from exporter.metrics import MetricFamily, MetricSpec, ValueConversionError, gauge, to_float

SESSIONS = gauge(
    "erp_database_sessions",
    "Database sessions by state: active, idle, idle_in_transaction, waiting (on a lock).",
    "state",
)
CONNECTIONS = gauge(
    "erp_database_connections", "Sessions counted against the connection limit (the exporter's own included)."
)
MAX_CONNECTIONS = gauge("erp_database_max_connections", "The database server's connection limit.")
CONNECTIONS_USED_RATIO = gauge(
    "erp_database_connections_used_ratio", "Share of the connection limit in use (connections / max)."
)

STATES: tuple[str, ...] = ("active", "idle", "idle_in_transaction", "waiting")
"""Every state, always published (0 when there is none), so a state that appears is a change, not a gap."""

_COLUMNS = (*STATES, "connections", "max_connections")

_PG_CLIENT = "backend_type = 'client backend'"
_PG_WAITING = "wait_event_type = 'Lock'"

# PostgreSQL 10 or newer (backend_type). `sees_all`: whether the login can see other users' sessions.
POSTGRESQL_SQL = f"""
SELECT
  count(*) FILTER (WHERE state IN ('active', 'fastpath function call')
                   AND wait_event_type IS DISTINCT FROM 'Lock') AS active,
  count(*) FILTER (WHERE state = 'idle') AS idle,
  count(*) FILTER (WHERE state IN ('idle in transaction', 'idle in transaction (aborted)')) AS idle_in_transaction,
  count(*) FILTER (WHERE {_PG_WAITING}) AS waiting,
  count(*) AS connections,
  current_setting('max_connections')::integer AS max_connections,
  pg_has_role(current_user, 'pg_read_all_stats', 'USAGE') AS sees_all
FROM pg_stat_activity
WHERE {_PG_CLIENT}
"""

_MYSQL_WAITING = "(t.trx_state = 'LOCK WAIT' OR p.STATE LIKE 'Waiting for%lock%' OR p.STATE = 'User lock')"

MYSQL_SQL = f"""
SELECT
  COALESCE(SUM(CASE WHEN p.COMMAND = 'Sleep' THEN 0 WHEN {_MYSQL_WAITING} THEN 0 ELSE 1 END), 0) AS active,
  COALESCE(SUM(CASE WHEN p.COMMAND = 'Sleep' AND t.trx_id IS NULL THEN 1 ELSE 0 END), 0) AS idle,
  COALESCE(SUM(CASE WHEN p.COMMAND = 'Sleep' AND t.trx_id IS NOT NULL THEN 1 ELSE 0 END), 0)
    AS idle_in_transaction,
  COALESCE(SUM(CASE WHEN p.COMMAND = 'Sleep' THEN 0 WHEN {_MYSQL_WAITING} THEN 1 ELSE 0 END), 0) AS waiting,
  COUNT(*) AS connections,
  @@max_connections AS max_connections
FROM information_schema.PROCESSLIST p
LEFT JOIN information_schema.INNODB_TRX t ON t.trx_mysql_thread_id = p.ID
WHERE p.COMMAND <> 'Daemon' AND p.USER <> 'system user'
"""

# A session can have several requests (MARS): they are folded to one row per session first.
MSSQL_SQL = """
SELECT
  COALESCE(SUM(CASE WHEN r.blocked = 0 THEN 1 ELSE 0 END), 0) AS active,
  COALESCE(SUM(CASE WHEN r.session_id IS NULL AND s.open_transaction_count = 0 THEN 1 ELSE 0 END), 0) AS idle,
  COALESCE(SUM(CASE WHEN r.session_id IS NULL AND s.open_transaction_count > 0 THEN 1 ELSE 0 END), 0)
    AS idle_in_transaction,
  COALESCE(SUM(CASE WHEN r.blocked = 1 THEN 1 ELSE 0 END), 0) AS waiting,
  COUNT(*) AS connections,
  @@MAX_CONNECTIONS AS max_connections
FROM sys.dm_exec_sessions AS s
LEFT JOIN (
  SELECT session_id, MAX(CASE WHEN blocking_session_id <> 0 THEN 1 ELSE 0 END) AS blocked
  FROM sys.dm_exec_requests
  WHERE status IN ('running', 'runnable', 'suspended')
  GROUP BY session_id
) AS r ON r.session_id = s.session_id
WHERE s.is_user_process = 1
"""

SESSIONS_SQL: dict[Dialect, str] = {
    Dialect.POSTGRESQL: POSTGRESQL_SQL,
    Dialect.MYSQL: MYSQL_SQL,
    Dialect.MSSQL: MSSQL_SQL,
}
"""Built-in SQL per dialect; a dialect not listed (SQLite, ...) has no sessions to report."""

_GRANT_ADVICE: dict[Dialect, str] = {
    Dialect.POSTGRESQL: "GRANT pg_monitor TO <login> (or pg_read_all_stats)",
    Dialect.MYSQL: "GRANT PROCESS ON *.* TO <login>",
    Dialect.MSSQL: "GRANT VIEW SERVER STATE TO <login>",
}


@dataclass(frozen=True)
class SessionCounts:
    """One reading: sessions per state, all sessions, and the server's limit (None if not a number)."""

    states: dict[str, int]
    connections: int
    max_connections: int | None


def counts_from_row(row: dict[str, Any]) -> SessionCounts:
    """Pure conversion of the built-in query's row (lower-case column names), the part unit tests call."""
    missing = [column for column in _COLUMNS if column not in row]
    if missing:
        raise CheckError(ErrorReason.QUERY, f"sessions query returned no column {missing[0]!r}")
    try:
        values = {column: to_float(row[column]) for column in _COLUMNS}
    except ValueConversionError as exc:
        raise CheckError(ErrorReason.QUERY, f"sessions query returned {exc}") from None
    states = {state: int(values[state] or 0) for state in STATES}
    limit = values["max_connections"]
    return SessionCounts(
        states=states,
        connections=int(values["connections"] or 0),
        max_connections=int(limit) if limit is not None and limit > 0 else None,
    )


def counts_to_families(counts: SessionCounts) -> list[MetricFamily]:
    sessions = SESSIONS.family()
    for state in STATES:
        sessions.add(counts.states[state], state=state)
    families = [sessions, CONNECTIONS.family().add(counts.connections)]
    if counts.max_connections is not None:
        families.append(MAX_CONNECTIONS.family().add(counts.max_connections))
        families.append(CONNECTIONS_USED_RATIO.family().add(counts.connections / counts.max_connections))
    return families


class DbSessionsCheck(BaseCheck):
    kind: ClassVar[str] = "db_sessions"
    metrics: ClassVar[tuple[MetricSpec, ...]] = (SESSIONS, CONNECTIONS, MAX_CONNECTIONS, CONNECTIONS_USED_RATIO)

    def __init__(self, name: str, database: TargetDatabase) -> None:
        super().__init__(name)
        self._database = database

    def run(self, ctx: RunContext) -> list[MetricFamily]:
        known = self._database.server
        if known is not None and known.dialect not in SESSIONS_SQL:
            return []  # SQLite and dialects without built-in SQL: nothing to report, no connection needed
        with self._database.session(ctx) as session:
            dialect = session.dialect
            sql = SESSIONS_SQL.get(dialect)
            if sql is None:
                return []
            try:
                rows = session.query(sql, max_rows=1).dicts()
            except CheckError as exc:
                raise _missing_privilege(exc, dialect) from None
        if not rows:
            raise CheckError(ErrorReason.QUERY, "sessions query returned no row")
        row = rows[0]
        if dialect is Dialect.POSTGRESQL and not _truthy(row.get("sees_all")):
            raise CheckError(
                ErrorReason.AUTH,
                "the login cannot see other users' sessions (their state is hidden): "
                + _GRANT_ADVICE[Dialect.POSTGRESQL],
            )
        return counts_to_families(counts_from_row(row))


def _truthy(value: object) -> bool:
    # psqlODBC returns booleans as '1'/'0' unless BoolsAsChar=0
    if isinstance(value, str):
        return value.strip().lower() in {"1", "t", "true", "on", "yes"}
    return bool(value)


def _missing_privilege(error: CheckError, dialect: Dialect) -> CheckError:
    """A refused read of the session tables is a missing grant (reason auth), said with the grant to give."""
    lowered = error.message.lower()
    if error.reason is ErrorReason.QUERY and ("access denied" in lowered or "permission denied" in lowered):
        advice = _GRANT_ADVICE.get(dialect)
        return CheckError(ErrorReason.AUTH, f"{error.message} ({advice})" if advice else error.message)
    return error


def _build(settings: CheckSettings, database: TargetDatabase) -> DbSessionsCheck:
    return DbSessionsCheck(settings.effective_name, database)


def check_kind() -> CheckKind:
    """`db_sessions`: one check per entry of a target (every target has one by default)."""
    return CheckKind("db_sessions", DbSessionsCheck.metrics, build_for_target=one_check_per_entry(_build))
