"""The statements that cost the database most: the top N by total execution time, for the quarterly
optimization workshop (which queries to index, rewrite or schedule elsewhere).

* PostgreSQL: `pg_stat_statements` (PostgreSQL 13 and later). The server must load the library
  (`shared_preload_libraries = 'pg_stat_statements'`, a restart) and the database must have the extension
  (`CREATE EXTENSION pg_stat_statements`); to see the text of other users' statements the login needs
  `pg_read_all_stats` (or `pg_monitor`). Statements of this database only; the exporter's own left out.
* MariaDB/MySQL: `performance_schema.events_statements_summary_by_digest` (the server option
  `performance_schema=ON`, a restart; `SELECT` on `performance_schema.*`). Statements of the connection's
  default database.
* Anywhere else the check fails with a clear error: there is no statement history to read.

The figures are the server's own counters since its statistics were last reset, so calls, time and rows
are counters (rate() works, a reset shows as a counter reset). Series are bounded: `top` statements, each
by its id (`queryid`: PostgreSQL's query id, MariaDB's digest); the normalized text is in
erp_database_statement_info only, cut to `query_length` characters, with whitespace collapsed and every
quoted literal replaced by '?' (PostgreSQL leaves the literals of utility statements such as ALTER ROLE
... PASSWORD in the text; only queries and data changes are read at all).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar

from exporter.checks.base import BaseCheck, CheckError, ErrorReason, RunContext
from exporter.checks.registry import CheckKind, one_check_per_entry
from exporter.config.model import CheckSettings, DbStatementsCheckConfig
from exporter.db.dialect import Dialect
from exporter.db.target import Session, TargetDatabase
from exporter.metrics import MetricFamily, MetricSpec, counter, gauge, to_float

CALLS = counter(
    "erp_database_statement_calls_total", "Executions of the statement since the statistics reset.", "queryid"
)
SECONDS = counter(
    "erp_database_statement_seconds_total", "Execution time of the statement since the statistics reset.", "queryid"
)
ROWS = counter("erp_database_statement_rows_total", "Rows the statement returned or changed.", "queryid")
MEAN_SECONDS = gauge("erp_database_statement_mean_seconds", "Mean execution time of one call.", "queryid")
INFO = gauge(
    "erp_database_statement_info", "The normalized text of a top statement (literals replaced, cut short).",
    "queryid", "query",
)
TRACKED = gauge("erp_database_statements_tracked", "Distinct statements the server keeps statistics for.")

DEFAULT_TOP = 20
DEFAULT_QUERY_LENGTH = 120

# Queries and data changes only: utility statements keep their literals (passwords included) in the text.
_PG_DML = r"^\s*(select|with|insert|update|delete|merge|values|table)\M"

PG_READY_SQL = (
    "SELECT (SELECT count(*) FROM pg_extension WHERE extname = 'pg_stat_statements'),"
    " current_setting('server_version_num')"
)
_NOT_PRELOADED = "pg_stat_statements is not loaded: add it to shared_preload_libraries and restart PostgreSQL"
PG_STATEMENTS_SQL = f"""
    SELECT CAST(s.queryid AS text), s.query, s.calls, s.total_exec_time / 1000.0, s.rows, count(*) OVER ()
    FROM pg_stat_statements s
    WHERE s.dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
      AND s.userid <> (SELECT oid FROM pg_roles WHERE rolname = current_user)
      AND s.queryid IS NOT NULL AND s.query ~* '{_PG_DML}'
    ORDER BY s.total_exec_time DESC
    LIMIT ?"""

MYSQL_READY_SQL = "SELECT @@performance_schema"
MYSQL_STATEMENTS_SQL = """
    SELECT DIGEST, DIGEST_TEXT, COUNT_STAR, SUM_TIMER_WAIT / 1000000000000, SUM_ROWS_SENT + SUM_ROWS_AFFECTED,
           COUNT(*) OVER ()
    FROM performance_schema.events_statements_summary_by_digest
    WHERE SCHEMA_NAME = DATABASE() AND DIGEST IS NOT NULL
    ORDER BY SUM_TIMER_WAIT DESC
    LIMIT ?"""

_QUOTED = re.compile(r"'(?:[^']|'')*'")
_SPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class Statement:
    """One row of the server's statement statistics; values as the driver gave them."""

    queryid: str
    query: str
    calls: object
    seconds: object
    rows: object


def normalized_text(query: str, length: int) -> str:
    """The statement as a label shows it: literals replaced by '?', whitespace collapsed, cut to `length`."""
    text = _SPACE.sub(" ", _QUOTED.sub("'?'", query)).strip()
    return text if len(text) <= length else text[: length - 1] + "…"


def statements_to_families(statements: list[Statement], tracked: object, query_length: int) -> list[MetricFamily]:
    """Pure conversion, the part unit tests call."""
    calls, seconds, rows, mean, info = (spec.family() for spec in (CALLS, SECONDS, ROWS, MEAN_SECONDS, INFO))
    for statement in statements:
        calls.add_raw(statement.calls, queryid=statement.queryid)
        seconds.add_raw(statement.seconds, queryid=statement.queryid)
        rows.add_raw(statement.rows, queryid=statement.queryid)
        count, total = to_float(statement.calls), to_float(statement.seconds)
        mean.add_raw(total / count if count and total is not None else None, queryid=statement.queryid)
        info.add(1.0, queryid=statement.queryid, query=normalized_text(statement.query, query_length))
    return [calls, seconds, rows, mean, info, TRACKED.family().add_raw(tracked)]


def _pg_ready(session: Session) -> None:
    installed, version = session.query(PG_READY_SQL, max_rows=1).rows[0][:2]
    if int(str(version)) < 130000:
        raise CheckError(ErrorReason.QUERY, "db_statements needs PostgreSQL 13 or later (pg_stat_statements 1.8)")
    if not int(str(installed)):
        raise CheckError(
            ErrorReason.QUERY,
            "pg_stat_statements is not installed in this database: CREATE EXTENSION pg_stat_statements "
            "(and the server must load it: shared_preload_libraries)",
        )


def _mysql_ready(session: Session) -> None:
    enabled = session.query(MYSQL_READY_SQL, max_rows=1).rows[0][0]
    if not int(str(enabled)):
        raise CheckError(
            ErrorReason.QUERY,
            "performance_schema is off: start the server with performance_schema=ON to read statement statistics",
        )


def fetch_statements(session: Session, top: int) -> tuple[list[Statement], object]:
    """The top statements by total time and how many the server tracks (0 when it tracks none)."""
    if session.dialect is Dialect.POSTGRESQL:
        _pg_ready(session)
        sql = PG_STATEMENTS_SQL
    elif session.dialect is Dialect.MYSQL:
        _mysql_ready(session)
        sql = MYSQL_STATEMENTS_SQL
    else:
        raise CheckError(
            ErrorReason.QUERY,
            "db_statements needs PostgreSQL (pg_stat_statements) or MariaDB/MySQL (performance_schema); "
            f"this target is {session.dialect.value}",
        )
    try:
        rows = session.query(sql, (top,), max_rows=top).rows
    except CheckError as exc:
        # reading shared_preload_libraries needs pg_read_all_settings; the view's own error says it instead
        if "shared_preload_libraries" in str(exc):
            raise CheckError(ErrorReason.QUERY, _NOT_PRELOADED) from None
        raise
    statements = [Statement(str(row[0]), str(row[1] or ""), row[2], row[3], row[4]) for row in rows]
    return statements, rows[0][5] if rows else 0


class DbStatementsCheck(BaseCheck):
    kind: ClassVar[str] = "db_statements"
    metrics: ClassVar[tuple[MetricSpec, ...]] = (CALLS, SECONDS, ROWS, MEAN_SECONDS, INFO, TRACKED)

    def __init__(
        self, name: str, database: TargetDatabase, top: int = DEFAULT_TOP, query_length: int = DEFAULT_QUERY_LENGTH
    ) -> None:
        super().__init__(name)
        self._database = database
        self._top = top
        self._query_length = query_length

    def run(self, ctx: RunContext) -> list[MetricFamily]:
        with self._database.session(ctx) as session:
            statements, tracked = fetch_statements(session, self._top)
        return statements_to_families(statements, tracked, self._query_length)


def _build(settings: CheckSettings, database: TargetDatabase) -> DbStatementsCheck:
    assert isinstance(settings, DbStatementsCheckConfig)
    return DbStatementsCheck(settings.effective_name, database, top=settings.top, query_length=settings.query_length)


def check_kind() -> CheckKind:
    """`db_statements`: one check per entry of a target (opt-in)."""
    return CheckKind("db_statements", DbStatementsCheck.metrics, build_for_target=one_check_per_entry(_build))
